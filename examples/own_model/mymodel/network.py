"""The model: a small factorized-prior autoencoder written the CompressAI way.

What rdbench's :class:`~rdbench.codecs.compressai_model.CompressAIModelCodec` needs of a model:
a ``compressai.models.CompressionModel`` with ``g_a`` and ``g_s``, whose ``forward`` returns the
likelihoods, whose ``compress`` starts with ``self.g_a(x)`` and whose ``decompress`` returns
``{"x_hat": self.g_s(y_hat).clamp_(0, 1)}`` — as CompressAI's own models do.
"""
from __future__ import annotations

from compressai.entropy_models import EntropyBottleneck
from compressai.layers import GDN
from compressai.models import CompressionModel
from compressai.models.utils import conv, deconv
from torch import nn


class MyModel(CompressionModel):
    """Three stride-2 GDN stages each way (N channels) and an M-channel latent with a factorized prior."""

    def __init__(self, N: int = 64, M: int = 96):
        super().__init__()
        self.entropy_bottleneck = EntropyBottleneck(M)
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(
            deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True), deconv(N, 3)
        )

    @property
    def downsampling_factor(self) -> int:
        return 2**3

    def forward(self, x):
        y = self.g_a(x)
        y_hat, y_likelihoods = self.entropy_bottleneck(y)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": y_likelihoods}}

    def compress(self, x):
        y = self.g_a(x)
        return {"strings": [self.entropy_bottleneck.compress(y)], "shape": y.size()[-2:]}

    def decompress(self, strings, shape):
        y_hat = self.entropy_bottleneck.decompress(strings[0], shape)
        return {"x_hat": self.g_s(y_hat).clamp_(0, 1)}
