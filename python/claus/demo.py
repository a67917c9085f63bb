"""A short demo of the fused STeW loss: `python -m claus.demo`.

A synthetic clip shows an actor (a bright square) moving across 16 frames. A person labelled
only two of them; the frames between get pseudo-label boxes interpolated from those two. STeW
weights every pixel by its frame's distance to a real label and by how consistent its FG/BG
label is over neighbouring frames. The demo prints those weights per frame, checks the fused op
against the pure-PyTorch reference, fits per-pixel logits to the pseudo-labels with the STeW
loss, and times one forward+backward of both implementations.
"""

from __future__ import annotations

import argparse
import time

import torch

import claus_ext
from claus.losses import stew_loss
from claus_ext import reference as ref


def moving_square(T: int, size: int, box: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth boxes (T,4) [x1,y1,x2,y2] of a square moving diagonally, and its masks
    (T,size,size) uint8."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(0, size // 4, (2,), generator=g).float()
    end = torch.tensor([size - box - 1.0, size - box - 1.0]) - torch.rand(2, generator=g) * 4
    boxes = torch.empty(T, 4)
    for t in range(T):
        xy = start + (end - start) * t / max(T - 1, 1)
        boxes[t] = torch.cat([xy, xy + box])
    return boxes, boxes_to_masks(boxes, size)


def boxes_to_masks(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """(T,4) boxes -> (T,size,size) uint8 masks (pixel centres inside the box)."""
    c = torch.arange(size, dtype=torch.float32) + 0.5
    inx = (c[None, :] >= boxes[:, 0:1]) & (c[None, :] <= boxes[:, 2:3])
    iny = (c[None, :] >= boxes[:, 1:2]) & (c[None, :] <= boxes[:, 3:4])
    return (iny[:, :, None] & inx[:, None, :]).to(torch.uint8)


def interpolate(boxes: torch.Tensor, labelled: list[int]) -> torch.Tensor:
    """Boxes linearly interpolated between labelled frames, held constant outside them."""
    T = boxes.shape[0]
    out = torch.empty_like(boxes)
    for t in range(T):
        before = [u for u in labelled if u <= t]
        after = [u for u in labelled if u >= t]
        lo = before[-1] if before else after[0]
        hi = after[0] if after else before[-1]
        f = 0.0 if hi == lo else (t - lo) / (hi - lo)
        out[t] = boxes[lo] * (1 - f) + boxes[hi] * f
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m claus.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)

    T, S = args.frames, args.size
    labelled = [T // 8, (5 * T) // 8]
    gt_boxes, gt_masks = moving_square(T, S, box=S // 4, seed=args.seed)
    pseudo = boxes_to_masks(interpolate(gt_boxes, labelled), S)[None]  # (1,T,S,S)
    annotated = torch.zeros(1, T, dtype=torch.bool)
    annotated[0, labelled] = True
    print(f"claus demo: {T} frames of {S}x{S}, a person labelled frames {labelled}; "
          f"build: {claus_ext.build_info()}")

    w = claus_ext.stew_weights(pseudo, annotated)[0]
    agree = (pseudo[0] == gt_masks).float().mean(dim=(1, 2))
    print("\nframe | labelled | mean STeW weight | pseudo-label agrees with truth")
    for t in range(T):
        print(f"{t:5d} | {'yes' if annotated[0, t] else '':8s} | {w[t].mean():16.3f} | "
              f"{100 * agree[t]:.1f}%")

    z0 = torch.zeros(1, T, S, S)
    fused = claus_ext.stew_stats(z0, pseudo, annotated)
    want = ref.stew_stats(z0, pseudo, annotated)
    err = ((fused - want).abs() / want.abs().clamp_min(1e-6)).max().item()
    print(f"\nfused vs reference stats: max relative difference {err:.2e}")
    if err > 1e-4:
        raise SystemExit("fused op disagrees with the reference")

    logits = torch.zeros(1, T, S, S, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.3)
    for step in range(args.steps):
        opt.zero_grad()
        loss = stew_loss(logits, pseudo, annotated)
        loss.backward()
        opt.step()
        if step % 20 == 0 or step == args.steps - 1:
            print(f"step {step:3d}: STeW loss {loss.item():.4f}")
    # Frames beyond the radius get no weight, hence no gradient: score the others.
    reached = w.amax(dim=(1, 2)) > 0
    pred = (logits.detach() > 0).to(torch.uint8)[0][reached]

    def iou(a: torch.Tensor, b: torch.Tensor) -> float:
        return ((a & b).sum() / (a | b).sum().clamp_min(1)).item()

    print(f"fitted masks on the {int(reached.sum())} weighted frames: IoU "
          f"{iou(pred, pseudo[0][reached]):.3f} with the pseudo-labels, "
          f"{iou(pred, gt_masks[reached]):.3f} with the truth")

    def timed(fn) -> float:
        best = float("inf")
        for _ in range(5):
            z = torch.randn(8, T, S, S, requires_grad=True)
            y = pseudo.expand(8, -1, -1, -1)
            a = annotated.expand(8, -1)
            t0 = time.perf_counter()
            fn(z, y, a).backward()
            best = min(best, time.perf_counter() - t0)
        return best * 1e3

    tf, tr = timed(stew_loss), timed(ref.stew_loss)
    print(f"\nforward+backward on (8,{T},{S},{S}): fused {tf:.2f} ms, reference {tr:.2f} ms "
          f"({tr / tf:.1f}x)")


if __name__ == "__main__":
    main()
