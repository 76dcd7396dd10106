"""The real all-MiniLM-L6-v2 weights: same hidden states as transformers, sensible embeddings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gptbert.io.checkpoint import load_any
from gptbert.models.heads import mean_pool

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a white horse on an enclosed ground, while a dog runs around.",
]


@pytest.fixture(scope="module")
def encoded(minilm_dir):
    tokenizer = transformers.BertTokenizerFast.from_pretrained(minilm_dir)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any(), "the batch should contain padding"
    return batch


def test_minilm_matches_transformers_and_embeds_sensibly(minilm_dir, encoded):
    ours = load_any(minilm_dir)
    assert ours.config.n_layer == 6 and ours.config.n_embd == 384 and ours.config.head is None
    theirs = transformers.BertModel.from_pretrained(minilm_dir).eval()
    mask = encoded["attention_mask"]
    with torch.no_grad():
        expected = theirs(**encoded).last_hidden_state  # (B, T, 384)
        hidden, _ = ours(encoded["input_ids"], token_type_ids=encoded["token_type_ids"], attention_mask=mask)
    real = mask.bool()
    torch.testing.assert_close(hidden[real], expected[real], atol=1e-4, rtol=0.0)

    emb = F.normalize(mean_pool(hidden, mask), dim=-1)  # (B, 384)
    similar = float(emb[0] @ emb[1])
    unrelated = float(emb[0] @ emb[2])
    assert similar > 0.7, similar
    assert unrelated < 0.2, unrelated
