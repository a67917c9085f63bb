"""claus: hybrid active learning for spatio-temporal video action detection.

Pick the most useful frames of the most useful videos for a person to label (CLAUS selection)
and train a detector from those sparse labels (STeW loss). The fused kernels live in
`claus_ext`; this package builds the framework on top.
"""

__version__ = "0.1.0"
