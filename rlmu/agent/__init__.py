"""The agent: SAC from pixels or state, with RLV's inverse model, domain discriminator and paired loss and
RLMU's Motion Extractor Module as optional parts selected by ``AgentConfig``."""

from __future__ import annotations


class DivergenceError(RuntimeError):
    """A loss became non-finite; raised before any optimizer step applied it.

    Attributes: ``loss_name`` (a progress-CSV column, e.g. ``loss_critic``), ``value`` (the float),
    ``update_step`` (the 0-based index of the update that produced it).
    """

    def __init__(self, loss_name: str, value: float, update_step: int):
        self.loss_name = loss_name
        self.value = float(value)
        self.update_step = int(update_step)
        super().__init__(f"{loss_name} = {self.value} at update {self.update_step}")

    def __reduce__(self):  # keep the three fields through pickling (multiprocessing workers)
        return (type(self), (self.loss_name, self.value, self.update_step))


from rlmu.agent.agent import Agent  # noqa: E402  (DivergenceError must exist first)
from rlmu.agent.config import AgentConfig, EncoderConfig, MEMConfig, RLVConfig, SACConfig  # noqa: E402

__all__ = [
    "Agent",
    "AgentConfig",
    "DivergenceError",
    "EncoderConfig",
    "MEMConfig",
    "RLVConfig",
    "SACConfig",
]
