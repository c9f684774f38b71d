"""Seeds of a run's independent random streams: ``child_seed(seed, TAG, ...)``.

Every random stream of a run is derived from the run's seed and a tag naming its purpose (plus indices
such as the episode), so a seed's streams are the same whether it trains alone or in a seed pack.
"""

from __future__ import annotations

import numpy as np

# Tags for np.random.SeedSequence([seed, tag, ...]): one independent stream per purpose.
SEED_TAG_TRAIN_EPISODE = 0  # reset seed of training episode i: (seed, tag, i)
SEED_TAG_EVAL_EPISODE = 1  # reset seed of evaluation episode i of epoch e: (seed, tag, e, i)
SEED_TAG_ACTIONS = 2  # random-phase actions
SEED_TAG_VDG = 3  # the Video Data Generator's draws
SEED_TAG_OBS_SAMPLER = 4  # the observation buffer's sampler
SEED_TAG_REPLAY = 5  # the interaction replay's sampler
SEED_TAG_VIRL_PAIRS = 6  # the VIRL distance model's pair generator
SEED_TAG_VIRL_INIT = 7  # the VIRL distance model's initial weights


def child_seed(*entropy: int) -> int:
    """A 32-bit seed from a tuple of integers (independent streams per purpose)."""
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])
