"""A real Label Studio server's exports (tests/fixtures/labelstudio, written by
tests/test_labelstudio_server.py with CLAUS_LS_FIXTURES set, Label Studio 1.23.2) imported
without a server: an accepted prediction track, interpolated tracks over enabled keyframes, a
superseded annotation, another round's tasks in the same project. The run that asked for them
is rebuilt with a stand-in trainer (the random strategy's choices do not depend on the model),
so the requested frames are the ones the server saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from claus.annotation import import_files, open_pending
from claus.config import RunConfig
from claus.data import LabelState
from claus.rounds import AwaitingLabels, run_rounds

from tests.realdata import render_custom
from tests.test_config import fake_trainer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "labelstudio"
W, H = 101, 45


def fixture(rnd: int) -> dict:
    return json.loads((FIXTURES / f"round{rnd}.json").read_text())


def test_fixtures_come_from_a_real_server():
    for rnd in (0, 1):
        doc = fixture(rnd)
        assert doc["label_studio"] == "1.23.2" and doc["round"] == rnd
        # The server's own export: fields claus never writes.
        task = doc["export"][0]
        assert {"inner_id", "total_annotations", "project", "updated_by"} <= set(task)


def test_real_exports_import_to_the_boxes_label_studio_shows(tmp_path):
    data = render_custom(tmp_path / "data", size=(H, W)).load()
    run = tmp_path / "run"
    # The server test's run: `--strategy random --oracle human --init 5 --step 10 --target 25
    # --videos-per-round 2` (its training options do not change what random selects).
    cfg = RunConfig(data=data.spec, strategy="random", oracle="human", init_percent=5,
                    step_percent=10, target_percent=25, videos_per_round=2, passes=2)
    for rnd in (0, 1):
        with pytest.raises(AwaitingLabels):
            run_rounds(run, cfg, trainer=fake_trainer(), dataset=data, progress=False)
        doc = fixture(rnd)
        pending = open_pending(run, data)
        assert pending.round == rnd
        got_req = {v: list(f) for v, f in pending.requested().items()}
        assert got_req == doc["requested"], "the fixture was made for other requests"
        path = tmp_path / f"export{rnd}.json"
        path.write_text(json.dumps(doc["export"]))
        report = import_files(pending, [path], "labelstudio")
        text = report.summary()
        assert "2 submitted annotations" in text and "used the latest" in text
        if rnd:
            assert "belongs to round 0, ignored" in text
        got = LabelState.load(pending.folder / "next_labels.json", data)
        want = {(v, f): bs for v, f, bs in doc["want"]}
        for video, frames in doc["requested"].items():
            for f in frames:
                assert got.is_labelled(video, f)
                boxes = sorted(tuple(b.box) for b in got.boxes(video, f))
                exp = sorted(tuple(b) for b in want.get((video, f), []))
                assert np.allclose(np.reshape(boxes, (-1, 4)), np.reshape(exp, (-1, 4)),
                                   atol=1e-3), (video, f, boxes, exp)
