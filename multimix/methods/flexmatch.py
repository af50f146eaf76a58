"""FlexMatch's curriculum pseudo-labelling (Zhang et al., NeurIPS 2021), ``method.threshold_mode:
flexmatch``.

Each unlabeled image remembers the class of its latest prediction that reached the fixed
threshold ``tau`` (``method.threshold``), or none. A class's learning effect is how many images
it holds; normalised by the largest effect, or by the count of images still unused while that
count is larger (the paper's threshold warm-up), it gives ``beta_c`` in ``[0, 1]``, and the
class's threshold is ``tau * beta_c / (2 - beta_c)`` (the paper's convex mapping). A class the
model has learned little of (at first: every class) takes pseudo-labels at a low bar, and the
bar rises to ``tau`` as the model grows confident of it. A batch is judged by the thresholds of
the predictions before it, then remembered, as in the paper's code.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from multimix.methods.thresholds import ThresholdPolicy, distributed, register_policy

UNUSED = -1  # an image none of whose predictions has reached tau yet


@register_policy("flexmatch")
class FlexMatchThreshold(ThresholdPolicy):
    """Per-class thresholds from the learning effect over the whole unlabeled pool."""

    def __init__(self, num_classes: int, threshold: float) -> None:
        super().__init__(num_classes, threshold)
        self.selected = torch.full((0,), UNUSED, dtype=torch.long)

    def bind_pool(self, size: int) -> None:
        if self.selected.numel() != size:
            self.selected = torch.full((size,), UNUSED, dtype=torch.long)

    def __call__(self, probs: torch.Tensor, indices: torch.Tensor | None, *, update: bool) -> torch.Tensor:
        if indices is None or self.selected.numel() == 0:
            raise ValueError("threshold_mode 'flexmatch' needs the unlabeled pool's size and each image's index")
        thresholds = self.threshold * self._mapped_effect().to(probs.device)  # from the images seen before
        if update:
            self._remember(probs.detach(), indices)
        return thresholds

    def _remember(self, probs: torch.Tensor, indices: torch.Tensor) -> None:
        confidence, predicted = probs.max(dim=1)
        indices, confidence, predicted = (_all_ranks(t) for t in (indices, confidence, predicted))
        confident = confidence >= self.threshold
        self.selected[indices[confident].cpu()] = predicted[confident].cpu()

    def _mapped_effect(self) -> torch.Tensor:
        effect = torch.bincount(self.selected[self.selected != UNUSED], minlength=self.num_classes).float()
        unused = float((self.selected == UNUSED).sum())
        beta = effect / max(float(effect.max()), unused, 1.0)
        return beta / (2.0 - beta)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"flexmatch_selected": self.selected.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "flexmatch_selected" in state:
            self.selected = state["flexmatch_selected"].long().clone()


def _all_ranks(values: torch.Tensor) -> torch.Tensor:
    """``values`` of every rank concatenated (each rank holds a batch of the same size)."""
    if not distributed():
        return values
    gathered = [torch.empty_like(values) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, values.contiguous())
    return torch.cat(gathered)
