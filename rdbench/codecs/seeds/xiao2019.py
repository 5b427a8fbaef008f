"""``xiao2019``: the deep-image-compression seed's own approach ("my approach", L. Xiao 2019).

The seed's change to its Ballé 2018 baseline (:mod:`rdbench.codecs.seeds.balle2018`) is a deeper
analysis and synthesis transform; the hyperprior and the entropy models are unchanged:

- ``g_a``: **8 convolutions with 3×3 kernels**, strides 1, 2, 1, 2, 1, 2, 1, 2 (×16 overall),
  192 channels each, GDN after layers 0–6, none after the last;
- ``g_s``: the mirror image: 8 layers with 3×3 kernels, upsampling strides 1, 2, 1, 2, 1, 2, 1, 2
  (a stride-1 layer is a plain 3×3 convolution, a stride-2 one a 3×3 transposed convolution
  with output padding 1, i.e. tensorflow-compression's ``SignalConv2D(corr=False, strides_up=2,
  padding="same_zeros")``), inverse GDN after layers 0–6, 3 output channels.

(The seed's README figure and a comment mention max pooling; its code has none, and neither
does this port.) State-dict keys follow CompressAI's layout (``g_a.0`` … ``g_a.14``,
``g_s.0`` … ``g_s.14``, with the GDN layers at the odd indices). Weights, qualities, coding and
parameters are as for ``balle2018``: ``checkpoint=PATH`` (``{quality}`` → 1–8) or ``weights=random``.
"""
from __future__ import annotations

import functools

from rdbench.codecs.seeds.balle2018 import SEED_FILTERS, SeedHyperpriorCodec, _arch as _balle_arch, _compressai

__all__ = ["Xiao2019", "network"]

#: strides of the 8 layers of g_a (downsampling) and of g_s (upsampling), in order
STRIDES = (1, 2, 1, 2, 1, 2, 1, 2)


@functools.lru_cache(maxsize=None)
def _arch():
    from torch import nn

    _compressai()
    from compressai.layers import GDN
    from compressai.models.utils import conv, deconv

    Balle2018Net = _balle_arch()

    class Xiao2019Net(Balle2018Net):
        """Balle2018Net with 8-layer 3×3 analysis and synthesis transforms."""

        def __init__(self, N: int = SEED_FILTERS, M: int = SEED_FILTERS, **kwargs):
            super().__init__(N, M, **kwargs)
            layers: list[nn.Module] = []
            for i, s in enumerate(STRIDES):
                last = i == len(STRIDES) - 1
                layers.append(conv(3 if i == 0 else N, M if last else N, kernel_size=3, stride=s))
                if not last:
                    layers.append(GDN(N))
            self.g_a = nn.Sequential(*layers)
            layers = []
            for i, s in enumerate(STRIDES):
                last = i == len(STRIDES) - 1
                c_in, c_out = (M if i == 0 else N), (3 if last else N)
                if s == 1:
                    layers.append(conv(c_in, c_out, kernel_size=3, stride=1))
                else:
                    layers.append(deconv(c_in, c_out, kernel_size=3, stride=s))
                if not last:
                    layers.append(GDN(N, inverse=True))
            self.g_s = nn.Sequential(*layers)

    return Xiao2019Net


def network(N: int = SEED_FILTERS, M: int = SEED_FILTERS):
    """A fresh (untrained) ``xiao2019`` network: a CompressAI ``CompressionModel``."""
    return _arch()(N, M)


class Xiao2019(SeedHyperpriorCodec):
    """Xiao 2019: Ballé 2018 with 8-layer 3×3 GDN analysis/synthesis transforms (N=M=192)."""

    name = "xiao2019"

    @classmethod
    def architecture(cls):
        return _arch()
