"""MindSpore's checkpoint messages (checkpoint.proto in this folder)."""
from .schema import OPTIONAL, REPEATED, REQUIRED, build

_M = build("sporeflow/mindspore_checkpoint.proto", "", {
    "Checkpoint": [("value", 1, REPEATED, "message", "Checkpoint.Value")],
    "Checkpoint.Value": [("tag", 1, REQUIRED, "string", None),
                         ("tensor", 2, OPTIONAL, "message", "TensorProto"),
                         ("maptensor", 3, OPTIONAL, "message", "MapTensorProto")],
    "TensorProto": [("dims", 1, REPEATED, "int64", None),
                    ("tensor_type", 2, REQUIRED, "string", None),
                    ("tensor_content", 3, REQUIRED, "bytes", None)],
    "MapTensorProto": [("tensor", 1, REPEATED, "message", "TensorProto")],
})
Checkpoint, Value, TensorProto, MapTensorProto = (_M["Checkpoint"], _M["Checkpoint.Value"], _M["TensorProto"],
                                                  _M["MapTensorProto"])
