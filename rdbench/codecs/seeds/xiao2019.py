"""``xiao2019``: the deep-image-compression seed's own model (L. Xiao 2019).

``balle2018`` with 8-layer 3×3 analysis and synthesis transforms (strides 1, 2, 1, 2, …); the
hyperprior, weights, qualities and coding are ``balle2018``'s. Layers and state-dict keys:
docs/codecs.md, section xiao2019.
"""
from __future__ import annotations

import functools

from rdbench.codecs.compressai_model import import_compressai
from rdbench.codecs.seeds.balle2018 import SEED_FILTERS, SeedHyperpriorCodec
from rdbench.codecs.seeds.balle2018 import net_class as balle2018_net_class

__all__ = ["Xiao2019", "net_class", "network"]

#: strides of the 8 layers of g_a (downsampling) and of g_s (upsampling), in order
STRIDES = (1, 2, 1, 2, 1, 2, 1, 2)


@functools.lru_cache(maxsize=None)
def net_class() -> type:
    """The ``xiao2019`` network class, defined on first use so that importing this module stays cheap."""
    from torch import nn

    compressai = import_compressai()
    GDN = compressai.layers.GDN
    conv, deconv = compressai.models.utils.conv, compressai.models.utils.deconv

    Balle2018Net = balle2018_net_class()

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
    return net_class()(N, M)


class Xiao2019(SeedHyperpriorCodec):
    """Xiao 2019: Ballé 2018 with 8-layer 3×3 GDN analysis/synthesis transforms (N=M=192)."""

    name = "xiao2019"

    @classmethod
    def architecture(cls) -> type:
        return net_class()
