"""The agent: SAC from pixels or state, with RLV's inverse model, domain discriminator and paired loss and
RLMU's Motion Extractor Module as optional parts selected by ``AgentConfig``."""

from __future__ import annotations

from rlmu.agent.agent import Agent
from rlmu.agent.config import AgentConfig, EncoderConfig, MEMConfig, RLVConfig, SACConfig
from rlmu.errors import DivergenceError

__all__ = [
    "Agent",
    "AgentConfig",
    "DivergenceError",
    "EncoderConfig",
    "MEMConfig",
    "RLVConfig",
    "SACConfig",
]
