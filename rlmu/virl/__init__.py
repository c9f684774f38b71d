"""VIRL (Berseth et al.): imitation from one demonstration video with a recurrent Siamese distance.

- ``model``: the recurrent Siamese network (frame encoder -> e_t -> GRU/LSTM -> h_t), shared weights.
- ``pairs``: positive/negative training pairs (noise, time warp, reversal, shuffling, cropping, rollouts).
- ``distance``: the contrastive loss and the training loop of the distance model.
- ``reward``: per-step rewards of an agent sequence against the demonstration (both / spatial / temporal).
"""

from rlmu.virl.config import VirlConfig
from rlmu.virl.distance import DistanceLearner, contrastive_loss
from rlmu.virl.model import RecurrentSiamese
from rlmu.virl.reward import sequence_rewards

__all__ = ["VirlConfig", "DistanceLearner", "RecurrentSiamese", "contrastive_loss", "sequence_rewards"]
