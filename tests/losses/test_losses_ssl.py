"""Self-supervised and distillation losses against NumPy references and hand computations."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from multimix.losses import barlow_twins_loss, distillation_loss, nt_xent_loss
from multimix.losses import contrastive as contrastive_module


def random_pair(n: int = 6, d: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator), torch.randn(n, d, generator=generator)


# ---------------------------------------------------------------- nt_xent_loss


def numpy_nt_xent(z1: np.ndarray, z2: np.ndarray, temperature: float) -> float:
    """One anchor at a time: -log(exp(s_pos) / sum over every other embedding of exp(s))."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = z1.shape[0]
    total = 0.0
    for k in range(2 * n):
        positive = k + n if k < n else k - n
        denominator = 0.0
        for j in range(2 * n):
            if j != k:
                denominator += math.exp(float(z[k] @ z[j]) / temperature)
        total += -(float(z[k] @ z[positive]) / temperature - math.log(denominator))
    return total / (2 * n)


@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.5, 1.0])
def test_nt_xent_matches_numpy_double_loop(temperature):
    z1, z2 = random_pair(n=5, d=4, seed=1)
    expected = numpy_nt_xent(z1.numpy(), z2.numpy(), temperature)
    assert nt_xent_loss(z1, z2, temperature).item() == pytest.approx(expected, rel=1e-5)


def test_nt_xent_float64_inputs_match_numpy_tightly():
    z1, z2 = random_pair(seed=2)
    loss = nt_xent_loss(z1.double(), z2.double(), 0.1)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(numpy_nt_xent(z1.numpy(), z2.numpy(), 0.1), rel=1e-12)


def test_nt_xent_invariant_to_batch_order_and_input_scale():
    z1, z2 = random_pair(seed=3)
    reference = nt_xent_loss(z1, z2)
    order = torch.randperm(z1.shape[0], generator=torch.Generator().manual_seed(0))
    assert nt_xent_loss(z1[order], z2[order]).item() == pytest.approx(reference.item(), rel=1e-6)
    # rows are L2-normalised, so per-row positive scales do not matter
    scales = torch.tensor([0.1, 1.0, 3.0, 10.0, 0.5, 2.0]).unsqueeze(1)
    assert nt_xent_loss(z1 * scales, 7.0 * z2).item() == pytest.approx(reference.item(), rel=1e-5)


def test_nt_xent_aligned_views_beat_random_views():
    # orthogonal rows: each view matches its partner exactly and no other embedding
    aligned = torch.eye(6, 8)
    z1, z2 = random_pair(n=6, d=8, seed=4)
    assert nt_xent_loss(aligned, aligned.clone()) < nt_xent_loss(z1, z2)
    # closed form for T = 0.5: the positive has s = 2, the 2N - 2 = 10 negatives have s = 0
    assert nt_xent_loss(aligned, aligned, 0.5).item() == pytest.approx(math.log(1.0 + 10.0 * math.exp(-2.0)), rel=1e-6)


def test_nt_xent_gradient_reaches_both_views():
    z1, z2 = random_pair(seed=5)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    nt_xent_loss(z1, z2).backward()
    for grad in (z1.grad, z2.grad):
        assert grad is not None and torch.all(torch.isfinite(grad)) and grad.abs().sum() > 0


def test_nt_xent_computes_in_float32_under_bfloat16_autocast():
    z1, z2 = random_pair(n=8, d=16, seed=6)
    layer = torch.nn.Linear(16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h1, h2 = layer(z1), layer(z2)
        assert h1.dtype == torch.bfloat16  # the embeddings really are low precision
        loss = nt_xent_loss(h1, h2, temperature=0.05)
    assert loss.dtype == torch.float32
    # the same bf16 values through a float32 computation; a bf16 matmul would be off by ~1e-2
    expected = nt_xent_loss(h1.float(), h2.float(), temperature=0.05)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_nt_xent_rejects_bad_inputs():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(z, torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        nt_xent_loss(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="N >= 2"):
        nt_xent_loss(z[:1], z[:1])
    for temperature in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            nt_xent_loss(z, z, temperature)


def test_sharded_anchors_with_gathered_keys_average_to_the_full_batch_loss():
    """What each rank computes under distribution, simulated in one process with W = 3 shards."""
    z1, z2 = random_pair(n=9, d=4, seed=7)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    u1 = torch.nn.functional.normalize(z1, dim=1)
    u2 = torch.nn.functional.normalize(z2, dim=1)
    n_local, world_size = 3, 3
    per_rank = [
        contrastive_module._nt_xent_from_keys(
            u1[r * n_local : (r + 1) * n_local],
            u2[r * n_local : (r + 1) * n_local],
            u1,
            u2,
            r * n_local,
            0.2,
        )
        for r in range(world_size)
    ]
    sharded = torch.stack(per_rank).mean()  # what DDP's gradient averaging optimises
    sharded_grads = torch.autograd.grad(sharded, (z1, z2))
    full = nt_xent_loss(z1, z2, 0.2)
    full_grads = torch.autograd.grad(full, (z1, z2))
    assert sharded.item() == pytest.approx(full.item(), rel=1e-6)
    for got, expected in zip(sharded_grads, full_grads):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_rank_worker(rank: int, port: int, z1: torch.Tensor, z2: torch.Tensor, results) -> None:
    torch.set_num_threads(1)
    store = dist.TCPStore("127.0.0.1", port, world_size=2, is_master=rank == 0)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=2)
    try:
        n = z1.shape[0] // 2
        local1 = z1[rank * n : (rank + 1) * n].clone().requires_grad_(True)
        local2 = z2[rank * n : (rank + 1) * n].clone().requires_grad_(True)
        loss = nt_xent_loss(local1, local2, 0.2)
        loss.backward()
        local_only = nt_xent_loss(local1.detach(), local2.detach(), 0.2, gather_distributed=False)
        results.put((rank, loss.item(), local_only.item(), local1.grad.tolist(), local2.grad.tolist()))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="this torch build has no torch.distributed")
@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
def test_nt_xent_gathers_negatives_across_two_gloo_ranks():
    z1, z2 = random_pair(n=6, d=4, seed=8)
    # fork, not spawn: the children inherit the imported modules instead of re-importing torch and
    # MONAI, which is most of the cost of this test.
    context = mp.get_context("fork")
    results = context.Queue()
    port = _free_port()
    workers = [context.Process(target=_two_rank_worker, args=(r, port, z1, z2, results)) for r in (0, 1)]
    for worker in workers:
        worker.start()
    try:
        by_rank = {}
        for _ in workers:
            rank, *values = results.get(timeout=60)
            by_rank[rank] = values
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    assert all(worker.exitcode == 0 for worker in workers)

    leaf1, leaf2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    full = nt_xent_loss(leaf1, leaf2, 0.2)
    full.backward()
    # the mean of the ranks' losses is the full-batch loss ...
    assert (by_rank[0][0] + by_rank[1][0]) / 2 == pytest.approx(full.item(), rel=1e-5)
    # ... and the rank-local gradients, averaged as DDP does, are its gradient
    grad1 = torch.tensor(by_rank[0][2] + by_rank[1][2]) / 2
    grad2 = torch.tensor(by_rank[0][3] + by_rank[1][3]) / 2
    torch.testing.assert_close(grad1, leaf1.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grad2, leaf2.grad, rtol=1e-4, atol=1e-6)
    # gather_distributed=False keeps each rank to its own three pairs
    for rank in (0, 1):
        rows = slice(3 * rank, 3 * rank + 3)
        expected = nt_xent_loss(z1[rows], z2[rows], 0.2).item()
        assert by_rank[rank][1] == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- barlow_twins_loss


def numpy_barlow_twins(z1: np.ndarray, z2: np.ndarray, lam: float, eps: float = 1e-5) -> float:
    def standardise(z):
        z = z.astype(np.float64)
        return (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0, ddof=0) + eps)

    c = standardise(z1).T @ standardise(z2) / z1.shape[0]
    d = c.shape[0]
    loss = 0.0
    for i in range(d):
        for j in range(d):
            loss += (1.0 - c[i, i]) ** 2 if i == j else lam * c[i, j] ** 2
    return loss


@pytest.mark.parametrize("lam", [0.0, 5e-3, 1.0])
def test_barlow_twins_matches_numpy(lam):
    z1, z2 = random_pair(n=7, d=4, seed=9)
    expected = numpy_barlow_twins(z1.numpy(), z2.numpy(), lam)
    assert barlow_twins_loss(z1, z2, lam).item() == pytest.approx(expected, rel=1e-5)


def test_barlow_twins_standardises_with_the_biased_std():
    # N = 2, D = 1: z1 = [0, 2] (mean 1, biased var 1), z2 = [0, 4] (mean 2, biased var 4) both
    # standardise to [-1, 1], so C = (1 + 1) / 2 = 1 and the loss is exactly 0. The unbiased std
    # (sqrt 2 and sqrt 8) would give [-1, 1] / sqrt 2, C = 1/2 and a loss of 1/4.
    z1, z2 = torch.tensor([[0.0], [2.0]]), torch.tensor([[0.0], [4.0]])
    assert barlow_twins_loss(z1, z2, eps=0.0).item() == 0.0
    # with eps: C = 1 / sqrt((1 + eps) (4 + eps)) * 2, since the centred values are +-1 and +-2
    eps = 0.5
    c = 2.0 / math.sqrt((1.0 + eps) * (4.0 + eps))
    assert barlow_twins_loss(z1, z2, eps=eps).item() == pytest.approx((1.0 - c) ** 2, rel=1e-6)


def test_barlow_twins_invariant_to_batch_order():
    z1, z2 = random_pair(n=8, d=5, seed=10)
    order = torch.randperm(8, generator=torch.Generator().manual_seed(1))
    assert barlow_twins_loss(z1[order], z2[order], 1.0).item() == pytest.approx(
        barlow_twins_loss(z1, z2, 1.0).item(), rel=1e-5
    )


def test_barlow_twins_zero_for_identical_views():
    z1, _ = random_pair(n=16, d=6, seed=11)
    # lambda = 0: only the diagonal counts, and C_ii = var / (var + eps) ~ 1 for identical views
    assert barlow_twins_loss(z1, z1.clone(), 0.0).item() == pytest.approx(0.0, abs=1e-8)
    # decorrelated dimensions: mean-0, variance-1, mutually orthogonal columns (Hadamard) make
    # C the identity, so the loss is ~0 even with the full off-diagonal weight
    hadamard = torch.tensor([[1.0, 1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]])
    assert barlow_twins_loss(hadamard, 3.0 * hadamard + 2.0, 1.0).item() == pytest.approx(0.0, abs=1e-8)
    assert barlow_twins_loss(hadamard, hadamard, 1.0, eps=0.0).item() == 0.0


def test_barlow_twins_float32_under_autocast_and_gradient():
    z1, z2 = random_pair(n=8, d=4, seed=12)
    z1.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = barlow_twins_loss(z1, z2.bfloat16())
    assert loss.dtype == torch.float32
    loss.backward()
    assert z1.grad is not None and z1.grad.abs().sum() > 0


def test_barlow_twins_rejects_bad_inputs():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="same shape"):
        barlow_twins_loss(z, torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        barlow_twins_loss(torch.randn(2, 3, 1), torch.randn(2, 3, 1))
    with pytest.raises(ValueError, match="N >= 2"):
        barlow_twins_loss(z[:1], z[:1])
    with pytest.raises(ValueError, match="lambda_offdiag"):
        barlow_twins_loss(z, z, -1.0)
    with pytest.raises(ValueError, match="eps"):
        barlow_twins_loss(z, z, eps=-1e-5)


# ---------------------------------------------------------------- distillation_loss

LN2, LN3, LN5, LN11 = math.log(2.0), math.log(3.0), math.log(5.0), math.log(11.0)
# Row 0: teacher [0, 2 ln 2, 0], student uniform. Row 1: teacher uniform, student [2 ln 3, 0, 0].
TEACHER = torch.tensor([[0.0, 2 * LN2, 0.0], [0.0, 0.0, 0.0]])
STUDENT = torch.tensor([[0.0, 0.0, 0.0], [2 * LN3, 0.0, 0.0]])


def test_distillation_hand_values_at_t1():
    # row 0: p = [1/6, 4/6, 1/6], q = 1/3: KL = ln 3 - H(p), H(p) = (1/3) ln 6 + (2/3) ln(3/2)
    row0 = LN3 - (math.log(6.0) / 3 + 2 * math.log(1.5) / 3)
    # row 1: p = 1/3, q = [9/11, 1/11, 1/11]: KL = -ln 3 - (1/3) sum ln q = ln 11 - (5/3) ln 3
    row1 = LN11 - 5 * LN3 / 3
    expected = (row0 + row1) / 2
    assert distillation_loss(STUDENT, TEACHER, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_distillation_hand_values_at_t2():
    # logits / 2: row 0 p = [1/4, 1/2, 1/4], H(p) = 1.5 ln 2, KL = ln 3 - 1.5 ln 2
    row0 = LN3 - 1.5 * LN2
    # row 1 q = [3/5, 1/5, 1/5]: KL = -ln 3 - (1/3)(ln 3 - 3 ln 5) = ln 5 - (4/3) ln 3
    row1 = LN5 - 4 * LN3 / 3
    expected = 4.0 * (row0 + row1) / 2  # T^2 = 4
    assert distillation_loss(STUDENT, TEACHER, 2.0).item() == pytest.approx(expected, rel=1e-6)


def test_distillation_is_cross_entropy_minus_teacher_entropy():
    student, teacher = random_pair(n=4, d=5, seed=13)
    for temperature in (1.0, 3.0):
        p = torch.softmax(teacher / temperature, dim=1)
        log_q = torch.log_softmax(student / temperature, dim=1)
        cross_entropy = -(p * log_q).sum(dim=1).mean()
        entropy = -(p * p.log()).sum(dim=1).mean()
        expected = temperature**2 * (cross_entropy - entropy)
        got = distillation_loss(student, teacher, temperature)
        assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_distillation_zero_iff_student_matches_teacher():
    logits, other = random_pair(n=4, d=3, seed=14)
    for temperature in (0.5, 1.0, 4.0):
        assert distillation_loss(logits, logits.clone(), temperature).item() == 0.0
        assert distillation_loss(other, logits, temperature).item() > 0.0
    # softmax ignores a per-row shift, so a shifted student matches too
    assert distillation_loss(logits + 5.0, logits).item() == pytest.approx(0.0, abs=1e-6)


def test_distillation_gradient_reaches_student_only():
    student, teacher = random_pair(n=4, d=3, seed=15)
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    distillation_loss(student, teacher, 2.0).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_distillation_temperature_scaling():
    student, teacher = random_pair(n=4, d=3, seed=16)
    # T^2 times the T = 1 loss of the softened logits, by definition
    for temperature in (0.5, 2.0, 5.0):
        assert distillation_loss(student, teacher, temperature).item() == pytest.approx(
            temperature**2 * distillation_loss(student / temperature, teacher / temperature).item(),
            rel=1e-5,
        )
    # why T^2: the student's gradient settles to a T-independent value at large T
    # (T (q - p) / B -> (centred student - centred teacher) / (C B))
    grads = []
    for temperature in (100.0, 1000.0):
        leaf = student.clone().requires_grad_(True)
        distillation_loss(leaf, teacher, temperature).backward()
        grads.append(leaf.grad)
    limit = ((student - student.mean(1, keepdim=True)) - (teacher - teacher.mean(1, keepdim=True))) / 12
    torch.testing.assert_close(grads[0], limit, rtol=0.05, atol=1e-3)
    torch.testing.assert_close(grads[1], limit, rtol=0.01, atol=1e-4)


def test_distillation_empty_batch_and_bad_inputs():
    student = torch.zeros(0, 3, requires_grad=True)
    loss = distillation_loss(student, torch.zeros(0, 3))
    assert loss.item() == 0.0 and loss.requires_grad
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        distillation_loss(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), 0.0)
