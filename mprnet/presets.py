"""The paper's three MPRNet presets: the widths of each task's network (official ``MPRNet.py`` of
each task folder of swz30/MPRNet; paper Section 4.1). Kept free of torch so that the workflow can
validate a study without importing it; :mod:`mprnet.model` builds networks from these.

``n_feat``: channels of the encoder-decoder stages; ``scale_unetfeats``: channels added per
U-Net level; ``scale_orsnetfeats``: channels added in the ORSNet stage.
"""

PRESETS: dict[str, dict] = {
    "deblurring": dict(n_feat=96, scale_unetfeats=48, scale_orsnetfeats=32),
    "deraining": dict(n_feat=40, scale_unetfeats=20, scale_orsnetfeats=16),
    "denoising": dict(n_feat=80, scale_unetfeats=48, scale_orsnetfeats=32),
}


def network_kwargs(task: str, overrides: dict | None = None) -> dict:
    """The keyword arguments of ``mprnet.model.MPRNet`` for ``task``'s network: its preset with
    ``overrides`` (a run config's ``model.overrides``) on top. Raises ``KeyError`` for an unknown task."""
    return {**PRESETS[task], **(overrides or {})}
