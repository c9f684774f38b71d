"""VIRL (Berseth et al.): imitation from one demonstration video with a recurrent Siamese distance.

- ``model``: the recurrent Siamese network (frame encoder -> e_t -> GRU/LSTM -> h_t), shared weights.
- ``pairs``: positive/negative training pairs (noise, time warp, reversal, shuffling, cropping, rollouts).
- ``distance``: the contrastive loss and the training loop of the distance model.
- ``reward``: per-step rewards of an agent sequence against the demonstration (both / spatial / temporal),
  and their recomputation for every stored transition of a replay buffer after a retrain.
- ``rollouts``: episodes as frame sequences (scripted demonstrations, random policies, reversed demos).
"""

from rlmu.virl.config import VirlConfig
from rlmu.virl.distance import DistanceLearner, contrastive_loss
from rlmu.virl.model import RecurrentSiamese
from rlmu.virl.reward import recompute_rewards, sequence_rewards
from rlmu.virl.rollouts import Episode, RandomPolicy, reversed_frames, rollout

__all__ = [
    "VirlConfig",
    "DistanceLearner",
    "Episode",
    "RandomPolicy",
    "RecurrentSiamese",
    "contrastive_loss",
    "recompute_rewards",
    "reversed_frames",
    "rollout",
    "sequence_rewards",
]
