"""``balle2018``: the scale-hyperprior baseline (Ballé et al. 2018, N = M = 192) of the
deep-image-compression seed, and :class:`SeedHyperpriorCodec`, the codec base it shares with ``xiao2019``.

CompressAI's ``ScaleHyperprior`` without the bias at the end of ``h_a`` and the ReLU at the end of
``h_s``, as the seed trained it. ``quality`` 1–8 indexes :data:`LAMBDAS` and only selects the
checkpoint (the seed published none: ``checkpoint=`` or ``weights=random``). Entropy coding runs
on the CPU so streams decode on any device. Details: docs/codecs.md, section balle2018.
"""
from __future__ import annotations

import functools
from typing import Any

from rdbench.codecs import bitstream
from rdbench.codecs.base import CodecError
from rdbench.codecs.compressai_model import CompressAIModelCodec, import_compressai
from rdbench.codecs.learned import weights_tag

__all__ = [
    "LAMBDAS",
    "SEED_FILTERS",
    "Balle2018",
    "SeedHyperpriorCodec",
    "infer_widths",
    "net_class",
    "network",
]

#: quality → the λ a checkpoint for that quality is meant to be trained with (λ·255²·MSE + bpp).
LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483, 7: 0.0932, 8: 0.1800}
SEED_FILTERS = 192  # --num_filters of the seed's training scripts (N = M)


# -- the networks ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def net_class() -> type:
    """The ``balle2018`` network class, defined on first use so that importing this module stays cheap."""
    from torch import nn

    compressai = import_compressai()
    conv, deconv = compressai.models.utils.conv, compressai.models.utils.deconv

    class Balle2018Net(compressai.models.ScaleHyperprior):
        """Scale hyperprior as the seed's tensorflow-compression 1.2 example builds it."""

        def __init__(self, N: int = SEED_FILTERS, M: int = SEED_FILTERS, **kwargs):
            super().__init__(N, M, **kwargs)
            self.h_a = nn.Sequential(
                conv(M, N, stride=1, kernel_size=3),
                nn.ReLU(inplace=True),
                conv(N, N),
                nn.ReLU(inplace=True),
                nn.Conv2d(N, N, kernel_size=5, stride=2, padding=2, bias=False),
            )
            self.h_s = nn.Sequential(
                deconv(N, N),
                nn.ReLU(inplace=True),
                deconv(N, N),
                nn.ReLU(inplace=True),
                conv(N, M, stride=1, kernel_size=3),
            )

        @classmethod
        def from_state_dict(cls, state_dict):
            N, M = infer_widths(state_dict)
            net = cls(N, M)
            net.load_state_dict(state_dict)
            return net

    return Balle2018Net


def infer_widths(state_dict) -> tuple[int, int]:
    """(N, M) of a scale-hyperprior state dict: ``g_a``'s first and ``h_a``'s first layer."""
    try:
        N = int(state_dict["g_a.0.weight"].size(0))
        M = int(state_dict["h_a.0.weight"].size(1))
    except KeyError as exc:
        raise KeyError(f"missing key {exc.args[0]!r}") from exc
    return N, M


def network(N: int = SEED_FILTERS, M: int = SEED_FILTERS):
    """A fresh (untrained) ``balle2018`` network: a CompressAI ``CompressionModel``."""
    return net_class()(N, M)


# -- the codecs ------------------------------------------------------------------------------------


class SeedHyperpriorCodec(CompressAIModelCodec):
    """A seed scale-hyperprior network (``g_a``, ``h_a``, ``h_s``, ``g_s``) as a codec.

    The CompressAI model path, but streams carry the hyper-latent string first and the latent
    string second, the tag names the checkpoint file (or the seed), and the entropy path is
    written out so that its stages (``hyperprior``, ``entropy_coding``) can be timed.
    """

    DEFAULT_QUALITIES = tuple(LAMBDAS)

    @classmethod
    def architecture(cls) -> type:
        """The network class (a CompressAI ``CompressionModel`` with ``from_state_dict``)."""
        raise NotImplementedError

    def new_model(self, quality: int) -> Any:
        return self.architecture()()

    def model_from_state_dict(self, quality: int, state_dict: dict[str, Any]) -> Any:
        """The network sized by the tensors (N and M read off them)."""
        return self.architecture().from_state_dict(state_dict)

    def _prefix(self) -> str:
        return f"{self.name} (rdbench seed port; compressai {import_compressai().__version__} rANS)"

    def _tag(self, net: Any, identity: str) -> bytes:
        return weights_tag(self.name, identity)

    def _entropy_encode(self, loaded, y):
        import torch

        net = loaded.net
        with self._stage("hyperprior"):
            z = net.h_a(torch.abs(y))
            eb = net.entropy_bottleneck
            z_hat, z_lik = eb(z, training=False)
            scales = net.h_s(z_hat)
            indexes = net.gaussian_conditional.build_indexes(scales)
            _, y_lik = net.gaussian_conditional(y, scales, training=False)
            bits = float(sum(-torch.log2(lk.double()).sum() for lk in (z_lik, y_lik)))
        with self._stage("entropy_coding"):
            z_strings = eb.compress(z)
            y_strings = net.gaussian_conditional.compress(y, indexes)
        return [z_strings[0], y_strings[0]], tuple(int(v) for v in z.shape[-2:]), bits

    def _entropy_decode(self, loaded, strings: list[bytes], header: bitstream.Header):
        net = loaded.net
        if len(strings) != 2 or len(header.shape) != 2:
            raise CodecError(f"{self.name}: expected 2 strings and a 2-d hyper-latent shape in the stream")
        with self._stage("entropy_coding"):
            z_hat = net.entropy_bottleneck.decompress([strings[0]], list(header.shape))
        with self._stage("hyperprior"):
            indexes = net.gaussian_conditional.build_indexes(net.h_s(z_hat))
        with self._stage("entropy_coding"):
            return net.gaussian_conditional.decompress([strings[1]], indexes, z_hat.dtype)


class Balle2018(SeedHyperpriorCodec):
    """Ballé et al. 2018 scale hyperprior, N=M=192: the deep-image-compression seed's baseline."""

    name = "balle2018"

    @classmethod
    def architecture(cls) -> type:
        return net_class()
