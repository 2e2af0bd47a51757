"""Node implementations by class_type; `object_info.json` must list exactly these."""

from __future__ import annotations

from app.standin.nodes.base import NodeFunction
from app.standin.nodes.images import IMAGE_NODES
from app.standin.nodes.models import MODEL_NODES
from app.standin.nodes.primitives import PRIMITIVE_NODES
from app.standin.nodes.sampling import SAMPLING_NODES
from app.standin.nodes.savers import SAVER_NODES

NODE_FUNCTIONS: dict[str, NodeFunction] = {
    **IMAGE_NODES,
    **SAVER_NODES,
    **PRIMITIVE_NODES,
    **MODEL_NODES,
    **SAMPLING_NODES,
}
