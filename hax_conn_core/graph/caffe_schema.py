"""Our own protobuf schema for the subset of Caffe's ``caffe.proto`` that hax_conn reads.

Field names and numbers follow BVLC Caffe's ``src/caffe/proto/caffe.proto`` so that real
prototxt (text) and caffemodel (binary) files parse; only the messages and fields we need, plus
the training-only fields found in deploy files (``param``, fillers, ``include``/``exclude``,
``loss_weight``, ``propagate_down``...), so that text_format accepts them and we ignore them.

protoc is not available on every machine and the Jetson's protobuf is old (3.12 on Ubuntu
22.04) while development uses 7.x, so the schema is built here as a ``FileDescriptorProto`` and
loaded into a private descriptor pool: that API is the same from 3.12 to 7.x. The package is
``caffe`` so that protobuf's own messages name Caffe's types.
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional, Sequence, Tuple

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "caffe"

_SCALARS = {
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
}

# A field: (name, number, type, default). type is a scalar name, "Message" / "Enum" name of a
# type in this file (qualified with the enclosing message for nested enums, as in
# "PoolingParameter.PoolMethod"), prefixed with "*" when the field is repeated.
Field = Tuple[str, int, str, Optional[str]]
Enum = Tuple[str, Sequence[Tuple[str, int]]]

_ENGINE: Enum = ("Engine", (("DEFAULT", 0), ("CAFFE", 1), ("CUDNN", 2)))

# Top-level enums.
_TOP_ENUMS: Sequence[Enum] = (("Phase", (("TRAIN", 0), ("TEST", 1))),)

# name -> (fields, nested enums). Order does not matter.
_MESSAGES: Dict[str, Tuple[Sequence[Field], Sequence[Enum]]] = {
    "BlobShape": ((("dim", 1, "*int64", None),), ()),
    "BlobProto": ((
        ("shape", 7, "BlobShape", None),
        ("data", 5, "*float", None),
        ("diff", 6, "*float", None),
        ("double_data", 8, "*double", None),
        ("double_diff", 9, "*double", None),
        ("num", 1, "int32", "0"),
        ("channels", 2, "int32", "0"),
        ("height", 3, "int32", "0"),
        ("width", 4, "int32", "0"),
    ), ()),
    "FillerParameter": ((
        ("type", 1, "string", "constant"),
        ("value", 2, "float", "0"),
        ("min", 3, "float", "0"),
        ("max", 4, "float", "1"),
        ("mean", 5, "float", "0"),
        ("std", 6, "float", "1"),
        ("sparse", 7, "int32", "-1"),
        ("variance_norm", 8, "FillerParameter.VarianceNorm", "FAN_IN"),
    ), (("VarianceNorm", (("FAN_IN", 0), ("FAN_OUT", 1), ("AVERAGE", 2))),)),
    "NetState": ((
        ("phase", 1, "Phase", "TEST"),
        ("level", 2, "int32", "0"),
        ("stage", 3, "*string", None),
    ), ()),
    "NetStateRule": ((
        ("phase", 1, "Phase", None),
        ("min_level", 2, "int32", None),
        ("max_level", 3, "int32", None),
        ("stage", 4, "*string", None),
        ("not_stage", 5, "*string", None),
    ), ()),
    "ParamSpec": ((
        ("name", 1, "string", None),
        ("share_mode", 2, "ParamSpec.DimCheckMode", None),
        ("lr_mult", 3, "float", "1"),
        ("decay_mult", 4, "float", "1"),
    ), (("DimCheckMode", (("STRICT", 0), ("PERMISSIVE", 1))),)),
    "NetParameter": ((
        ("name", 1, "string", None),
        ("input", 3, "*string", None),
        ("input_shape", 8, "*BlobShape", None),
        ("input_dim", 4, "*int32", None),
        ("force_backward", 5, "bool", "false"),
        ("state", 6, "NetState", None),
        ("debug_info", 7, "bool", "false"),
        ("layer", 100, "*LayerParameter", None),
        ("layers", 2, "*V1LayerParameter", None),
    ), ()),
    "LayerParameter": ((
        ("name", 1, "string", None),
        ("type", 2, "string", None),
        ("bottom", 3, "*string", None),
        ("top", 4, "*string", None),
        ("phase", 10, "Phase", None),
        ("loss_weight", 5, "*float", None),
        ("param", 6, "*ParamSpec", None),
        ("blobs", 7, "*BlobProto", None),
        ("propagate_down", 11, "*bool", None),
        ("include", 8, "*NetStateRule", None),
        ("exclude", 9, "*NetStateRule", None),
        ("transform_param", 100, "TransformationParameter", None),
        ("loss_param", 101, "LossParameter", None),
        ("accuracy_param", 102, "AccuracyParameter", None),
        ("batch_norm_param", 139, "BatchNormParameter", None),
        ("concat_param", 104, "ConcatParameter", None),
        ("convolution_param", 106, "ConvolutionParameter", None),
        ("data_param", 107, "DataParameter", None),
        ("dropout_param", 108, "DropoutParameter", None),
        ("eltwise_param", 110, "EltwiseParameter", None),
        ("flatten_param", 135, "FlattenParameter", None),
        ("image_data_param", 115, "ImageDataParameter", None),
        ("inner_product_param", 117, "InnerProductParameter", None),
        ("input_param", 143, "InputParameter", None),
        ("lrn_param", 118, "LRNParameter", None),
        ("pooling_param", 121, "PoolingParameter", None),
        ("relu_param", 123, "ReLUParameter", None),
        ("scale_param", 142, "ScaleParameter", None),
        ("softmax_param", 125, "SoftmaxParameter", None),
    ), ()),
    "TransformationParameter": ((
        ("scale", 1, "float", "1"),
        ("mirror", 2, "bool", "false"),
        ("crop_size", 3, "uint32", "0"),
        ("mean_file", 4, "string", None),
        ("mean_value", 5, "*float", None),
        ("force_color", 6, "bool", "false"),
        ("force_gray", 7, "bool", "false"),
    ), ()),
    "LossParameter": ((
        ("ignore_label", 1, "int32", None),
        ("normalization", 3, "LossParameter.NormalizationMode", "VALID"),
        ("normalize", 2, "bool", None),
    ), (("NormalizationMode", (("FULL", 0), ("VALID", 1), ("BATCH_SIZE", 2), ("NONE", 3))),)),
    "AccuracyParameter": ((
        ("top_k", 1, "uint32", "1"),
        ("axis", 2, "int32", "1"),
        ("ignore_label", 3, "int32", None),
    ), ()),
    "DataParameter": ((
        ("source", 1, "string", None),
        ("batch_size", 4, "uint32", None),
        ("rand_skip", 7, "uint32", "0"),
        ("backend", 8, "DataParameter.DB", "LEVELDB"),
        ("scale", 2, "float", "1"),
        ("mean_file", 3, "string", None),
        ("crop_size", 5, "uint32", "0"),
        ("mirror", 6, "bool", "false"),
        ("force_encoded_color", 9, "bool", "false"),
        ("prefetch", 10, "uint32", "4"),
    ), (("DB", (("LEVELDB", 0), ("LMDB", 1))),)),
    "ImageDataParameter": ((
        ("source", 1, "string", None),
        ("batch_size", 4, "uint32", "1"),
        ("rand_skip", 7, "uint32", "0"),
        ("shuffle", 8, "bool", "false"),
        ("new_height", 9, "uint32", "0"),
        ("new_width", 10, "uint32", "0"),
        ("is_color", 11, "bool", "true"),
        ("scale", 2, "float", "1"),
        ("mean_file", 3, "string", None),
        ("crop_size", 5, "uint32", "0"),
        ("mirror", 6, "bool", "false"),
        ("root_folder", 12, "string", ""),
    ), ()),
    "ConvolutionParameter": ((
        ("num_output", 1, "uint32", None),
        ("bias_term", 2, "bool", "true"),
        ("pad", 3, "*uint32", None),
        ("kernel_size", 4, "*uint32", None),
        ("stride", 6, "*uint32", None),
        ("dilation", 18, "*uint32", None),
        ("pad_h", 9, "uint32", "0"),
        ("pad_w", 10, "uint32", "0"),
        ("kernel_h", 11, "uint32", None),
        ("kernel_w", 12, "uint32", None),
        ("stride_h", 13, "uint32", None),
        ("stride_w", 14, "uint32", None),
        ("group", 5, "uint32", "1"),
        ("weight_filler", 7, "FillerParameter", None),
        ("bias_filler", 8, "FillerParameter", None),
        ("engine", 15, "ConvolutionParameter.Engine", "DEFAULT"),
        ("axis", 16, "int32", "1"),
        ("force_nd_im2col", 17, "bool", "false"),
    ), (_ENGINE,)),
    "PoolingParameter": ((
        ("pool", 1, "PoolingParameter.PoolMethod", "MAX"),
        # Caffe declares pad / kernel_size / stride optional here; repeated is a superset
        # (one value, as Caffe writes them, or an (h, w) pair).
        ("pad", 4, "*uint32", None),
        ("pad_h", 9, "uint32", "0"),
        ("pad_w", 10, "uint32", "0"),
        ("kernel_size", 2, "*uint32", None),
        ("kernel_h", 5, "uint32", None),
        ("kernel_w", 6, "uint32", None),
        ("stride", 3, "*uint32", None),
        ("stride_h", 7, "uint32", None),
        ("stride_w", 8, "uint32", None),
        ("engine", 11, "PoolingParameter.Engine", "DEFAULT"),
        ("global_pooling", 12, "bool", "false"),
        ("round_mode", 13, "PoolingParameter.RoundMode", "CEIL"),
        # Not BVLC: forks after BVLC/caffe PR #3057 (e.g. shicai/DenseNet-Caffe files) write
        # ``ceil_mode: false``; their number clashes with round_mode, so ours is 1013, as
        # other forks chose (text files name the field, so the number does not matter there).
        ("ceil_mode", 1013, "bool", "true"),
    ), (("PoolMethod", (("MAX", 0), ("AVE", 1), ("STOCHASTIC", 2))), _ENGINE,
        ("RoundMode", (("CEIL", 0), ("FLOOR", 1))))),
    "LRNParameter": ((
        ("local_size", 1, "uint32", "5"),
        ("alpha", 2, "float", "1"),
        ("beta", 3, "float", "0.75"),
        ("norm_region", 4, "LRNParameter.NormRegion", "ACROSS_CHANNELS"),
        ("k", 5, "float", "1"),
        ("engine", 6, "LRNParameter.Engine", "DEFAULT"),
    ), (("NormRegion", (("ACROSS_CHANNELS", 0), ("WITHIN_CHANNEL", 1))), _ENGINE)),
    "InnerProductParameter": ((
        ("num_output", 1, "uint32", None),
        ("bias_term", 2, "bool", "true"),
        ("weight_filler", 3, "FillerParameter", None),
        ("bias_filler", 4, "FillerParameter", None),
        ("axis", 5, "int32", "1"),
        ("transpose", 6, "bool", "false"),
    ), ()),
    "BatchNormParameter": ((
        ("use_global_stats", 1, "bool", None),
        ("moving_average_fraction", 2, "float", "0.999"),
        ("eps", 3, "float", "1e-05"),
    ), ()),
    "ScaleParameter": ((
        ("axis", 1, "int32", "1"),
        ("num_axes", 2, "int32", "1"),
        ("filler", 3, "FillerParameter", None),
        ("bias_term", 4, "bool", "false"),
        ("bias_filler", 5, "FillerParameter", None),
    ), ()),
    "EltwiseParameter": ((
        ("operation", 1, "EltwiseParameter.EltwiseOp", "SUM"),
        ("coeff", 2, "*float", None),
        ("stable_prod_grad", 3, "bool", "true"),
    ), (("EltwiseOp", (("PROD", 0), ("SUM", 1), ("MAX", 2))),)),
    "ConcatParameter": ((
        ("axis", 2, "int32", "1"),
        ("concat_dim", 1, "uint32", "1"),
    ), ()),
    "DropoutParameter": ((("dropout_ratio", 1, "float", "0.5"),), ()),
    "SoftmaxParameter": ((
        ("engine", 1, "SoftmaxParameter.Engine", "DEFAULT"),
        ("axis", 2, "int32", "1"),
    ), (_ENGINE,)),
    "FlattenParameter": ((
        ("axis", 1, "int32", "1"),
        ("end_axis", 2, "int32", "-1"),
    ), ()),
    "ReLUParameter": ((
        ("negative_slope", 1, "float", "0"),
        ("engine", 2, "ReLUParameter.Engine", "DEFAULT"),
    ), (_ENGINE,)),
    "InputParameter": ((("shape", 1, "*BlobShape", None),), ()),
    "V1LayerParameter": ((
        ("bottom", 2, "*string", None),
        ("top", 3, "*string", None),
        ("name", 4, "string", None),
        ("include", 32, "*NetStateRule", None),
        ("exclude", 33, "*NetStateRule", None),
        ("type", 5, "V1LayerParameter.LayerType", None),
        ("blobs", 6, "*BlobProto", None),
        ("param", 1001, "*string", None),
        ("blob_share_mode", 1002, "*V1LayerParameter.DimCheckMode", None),
        ("blobs_lr", 7, "*float", None),
        ("weight_decay", 8, "*float", None),
        ("loss_weight", 35, "*float", None),
        ("accuracy_param", 27, "AccuracyParameter", None),
        ("concat_param", 9, "ConcatParameter", None),
        ("convolution_param", 10, "ConvolutionParameter", None),
        ("data_param", 11, "DataParameter", None),
        ("dropout_param", 12, "DropoutParameter", None),
        ("eltwise_param", 24, "EltwiseParameter", None),
        ("image_data_param", 15, "ImageDataParameter", None),
        ("inner_product_param", 17, "InnerProductParameter", None),
        ("lrn_param", 18, "LRNParameter", None),
        ("pooling_param", 19, "PoolingParameter", None),
        ("relu_param", 30, "ReLUParameter", None),
        ("softmax_param", 39, "SoftmaxParameter", None),
        ("transform_param", 36, "TransformationParameter", None),
        ("loss_param", 42, "LossParameter", None),
    ), (("LayerType", (
        ("NONE", 0), ("ABSVAL", 35), ("ACCURACY", 1), ("ARGMAX", 30), ("BNLL", 2),
        ("CONCAT", 3), ("CONTRASTIVE_LOSS", 37), ("CONVOLUTION", 4), ("DATA", 5),
        ("DECONVOLUTION", 39), ("DROPOUT", 6), ("DUMMY_DATA", 32), ("EUCLIDEAN_LOSS", 7),
        ("ELTWISE", 25), ("EXP", 38), ("FLATTEN", 8), ("HDF5_DATA", 9), ("HDF5_OUTPUT", 10),
        ("HINGE_LOSS", 28), ("IM2COL", 11), ("IMAGE_DATA", 12), ("INFOGAIN_LOSS", 13),
        ("INNER_PRODUCT", 14), ("LRN", 15), ("MEMORY_DATA", 29),
        ("MULTINOMIAL_LOGISTIC_LOSS", 16), ("MVN", 34), ("POOLING", 17), ("POWER", 26),
        ("RELU", 18), ("SIGMOID", 19), ("SIGMOID_CROSS_ENTROPY_LOSS", 27), ("SILENCE", 36),
        ("SOFTMAX", 20), ("SOFTMAX_LOSS", 21), ("SPLIT", 22), ("SLICE", 33), ("TANH", 23),
        ("WINDOW_DATA", 24), ("THRESHOLD", 31))),
        ("DimCheckMode", (("STRICT", 0), ("PERMISSIVE", 1))))),
}

#: V1 enum type -> the type string Caffe's UpgradeV1LayerType gives it.
V1_TYPE_NAMES: Dict[str, str] = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DATA": "Data", "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split",
    "SLICE": "Slice", "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}


def _add_enum(target, name: str, values: Iterable[Tuple[str, int]]) -> None:
    enum = target.add(name=name)
    for value_name, number in values:
        enum.value.add(name=value_name, number=number)


def _add_field(message: descriptor_pb2.DescriptorProto, spec: Field) -> None:
    name, number, type_spec, default = spec
    fdp = descriptor_pb2.FieldDescriptorProto
    repeated = type_spec.startswith("*")
    type_name = type_spec.lstrip("*")
    field = message.field.add(name=name, number=number,
                              label=fdp.LABEL_REPEATED if repeated else fdp.LABEL_OPTIONAL)
    if type_name in _SCALARS:
        field.type = _SCALARS[type_name]
    else:
        is_enum = type_name == "Phase" or "." in type_name
        field.type = fdp.TYPE_ENUM if is_enum else fdp.TYPE_MESSAGE
        field.type_name = f".{PACKAGE}.{type_name}"
    if default is not None:
        field.default_value = default


def file_descriptor_proto() -> descriptor_pb2.FileDescriptorProto:
    """The schema as a FileDescriptorProto (``caffe_subset.proto``, package ``caffe``)."""
    proto = descriptor_pb2.FileDescriptorProto(name="hax_conn/caffe_subset.proto",
                                               package=PACKAGE, syntax="proto2")
    for name, values in _TOP_ENUMS:
        _add_enum(proto.enum_type, name, values)
    for name, (fields, enums) in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        for enum_name, values in enums:
            _add_enum(message.enum_type, enum_name, values)
        for spec in fields:
            _add_field(message, spec)
    return proto


_CLASSES: Dict[str, type] = {}


def message_class(name: str) -> type:
    """The generated message class ``caffe.<name>`` (e.g. ``NetParameter``)."""
    if not _CLASSES:
        pool = descriptor_pool.DescriptorPool()
        pool.AddSerializedFile(file_descriptor_proto().SerializeToString())
        get_class = getattr(message_factory, "GetMessageClass", None)  # protobuf >= 4.22
        factory = None if get_class else message_factory.MessageFactory(pool)
        for message_name in _MESSAGES:
            descriptor = pool.FindMessageTypeByName(f"{PACKAGE}.{message_name}")
            _CLASSES[message_name] = (get_class(descriptor) if get_class
                                      else factory.GetPrototype(descriptor))
    return _CLASSES[name]
