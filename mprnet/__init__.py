"""mprnet-study: a reproducible benchmark study of MPRNet (Zamir et al., CVPR 2021, arXiv 2102.02808).

The network is imported lazily so that commands which never touch it (scoring, data
preparation) start without loading torch.
"""

__version__ = "0.1.0"

_LAZY = {
    "MPRNet": "mprnet.model",
    "mprnet_deblurring": "mprnet.model",
    "mprnet_deraining": "mprnet.model",
    "mprnet_denoising": "mprnet.model",
    "build_model": "mprnet.model",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mprnet' has no attribute {name!r}")


__all__ = sorted(_LAZY) + ["__version__"]
