"""Plain per-query reference implementations the vectorised code is checked against."""

from __future__ import annotations

import numpy as np

LOCATION = {1: 1, 2: 2, 3: 2, 4: 4, 5: 5, 6: 6}


def reference_metrics(dist, q_pids, g_pids, q_cams=None, g_cams=None, *, exclude=False, dedup=False, max_rank=20):
    """One query at a time, as the official MATLAB code reads: stable sort, exclusion, dedup CMC."""
    dist = np.asarray(dist, dtype=np.float64)
    counter = np.zeros(max_rank)
    aps, inps = [], []
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind="stable")
        ids = np.asarray(g_pids)[order]
        if exclude:
            qloc = LOCATION.get(int(q_cams[i]), int(q_cams[i]))
            keep = [LOCATION.get(int(c), int(c)) != qloc for c in np.asarray(g_cams)[order]]
            ids = ids[np.asarray(keep, dtype=bool)]
        hit = ids == q_pids[i]
        if not hit.any():
            continue
        if dedup:
            seen, uniq = set(), []
            for x in ids:
                if x not in seen:
                    seen.add(x)
                    uniq.append(x)
            rank = uniq.index(q_pids[i]) + 1
        else:
            rank = int(np.flatnonzero(hit)[0]) + 1
        if rank <= max_rank:
            counter[rank - 1:] += 1
        pos = np.flatnonzero(hit) + 1
        aps.append(np.mean(np.arange(1, len(pos) + 1) / pos))
        inps.append(len(pos) / pos[-1])
    n = len(aps)
    if n == 0:
        return None
    return counter / n, float(np.mean(aps)), float(np.mean(inps)), n


def reference_rerank(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3):
    """The widely copied loop implementation of k-reciprocal re-ranking (Zhong et al. 2017)."""
    original_dist = np.concatenate(
        [np.concatenate([q_q_dist, q_g_dist], axis=1), np.concatenate([q_g_dist.T, g_g_dist], axis=1)], axis=0
    )
    original_dist = np.power(original_dist, 2).astype(np.float32)
    original_dist = np.transpose(1.0 * original_dist / np.max(original_dist, axis=0))
    V = np.zeros_like(original_dist).astype(np.float32)
    initial_rank = np.argsort(original_dist, kind="stable").astype(np.int32)
    query_num = q_g_dist.shape[0]
    gallery_num = q_g_dist.shape[0] + q_g_dist.shape[1]
    all_num = gallery_num
    for i in range(all_num):
        forward_k_neigh_index = initial_rank[i, : k1 + 1]
        backward_k_neigh_index = initial_rank[forward_k_neigh_index, : k1 + 1]
        fi = np.where(backward_k_neigh_index == i)[0]
        k_reciprocal_index = forward_k_neigh_index[fi]
        k_reciprocal_expansion_index = k_reciprocal_index
        for j in range(len(k_reciprocal_index)):
            candidate = k_reciprocal_index[j]
            cf = initial_rank[candidate, : int(np.around(k1 / 2.0)) + 1]
            cb = initial_rank[cf, : int(np.around(k1 / 2.0)) + 1]
            fi_candidate = np.where(cb == candidate)[0]
            candidate_k_reciprocal_index = cf[fi_candidate]
            if len(np.intersect1d(candidate_k_reciprocal_index, k_reciprocal_index)) > 2.0 / 3 * len(
                candidate_k_reciprocal_index
            ):
                k_reciprocal_expansion_index = np.append(k_reciprocal_expansion_index, candidate_k_reciprocal_index)
        k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
        weight = np.exp(-original_dist[i, k_reciprocal_expansion_index])
        V[i, k_reciprocal_expansion_index] = 1.0 * weight / np.sum(weight)
    original_dist = original_dist[:query_num,]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(all_num):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    invIndex = [np.where(V[:, i] != 0)[0] for i in range(gallery_num)]
    jaccard_dist = np.zeros_like(original_dist, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros(shape=[1, gallery_num], dtype=np.float32)
        indNonZero = np.where(V[i, :] != 0)[0]
        indImages = [invIndex[ind] for ind in indNonZero]
        for j in range(len(indNonZero)):
            temp_min[0, indImages[j]] = temp_min[0, indImages[j]] + np.minimum(
                V[i, indNonZero[j]], V[indImages[j], indNonZero[j]]
            )
        jaccard_dist[i] = 1 - temp_min / (2.0 - temp_min)
    final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
    return final_dist[:query_num, query_num:]
