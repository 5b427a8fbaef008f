from rdbench.codecs.compressai_model import CompressAIModelCodec


class MyModelCodec(CompressAIModelCodec):
    """``mymodel:checkpoint=runs/mymodel/q{quality}.pth``: one state dict per quality."""

    name = "mymodel"
    DEFAULT_QUALITIES = (1, 2, 3, 4)

    def new_model(self, quality: int):
        from mymodel.network import MyModel  # imported when a quality is first coded

        return MyModel(N=64, M=96)
