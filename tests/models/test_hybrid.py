"""The GPT-BERT hybrid: its attention modes, cached generation, fill-mask alignment, heads, save / load."""

from __future__ import annotations

import json

import pytest
import torch

from gptbert.config import ModelConfig
from gptbert.generate import generate
from gptbert.io.checkpoint import load_model, save_model
from gptbert.models import build_model
from gptbert.models.transformer import attention_mask_for

ATOL = dict(atol=1e-5, rtol=0.0)
T = 10
V = 99


def _model(head: str | None = "lm", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    base = dict(family="hybrid", n_layer=2, n_head=4, n_embd=32, intermediate_size=37, block_size=40,
                vocab_size=V, head=head, num_labels=3)
    base.update(kw)
    return build_model(ModelConfig(**base)).eval()


def _ids(b: int = 2, t: int = T, seed: int = 0) -> torch.Tensor:
    return torch.randint(5, V, (b, t), generator=torch.Generator().manual_seed(seed))


def _changed_after(idx: torch.Tensor, t: int) -> torch.Tensor:
    """``idx`` with every token after position t replaced."""
    other = idx.clone()
    other[:, t + 1:] = (idx[:, t + 1:] + 7) % (V - 5) + 5
    return other


@pytest.mark.parametrize("t", [0, 4, T - 2])
def test_causal_mode_hides_the_future_and_bidirectional_does_not(t):
    model = _model(head=None)
    idx = _ids()
    other = _changed_after(idx, t)
    with torch.no_grad():
        causal, changed = model(idx, mode="causal")[0], model(other, mode="causal")[0]
        assert torch.allclose(causal[:, : t + 1], changed[:, : t + 1], **ATOL)
        assert not torch.allclose(causal[:, t + 1:], changed[:, t + 1:], **ATOL)
        both, both_changed = model(idx, mode="bidirectional")[0], model(other, mode="bidirectional")[0]
        assert not torch.allclose(both[:, : t + 1], both_changed[:, : t + 1], **ATOL)
        # 'masked' is the bidirectional mask under the objective's name.
        assert torch.equal(model(idx, mode="masked")[0], both)


def test_prefix_mode_is_bidirectional_inside_the_prefix_causal_after():
    model = _model(head=None)
    idx, P = _ids(), 4
    with torch.no_grad():
        out = model(idx, mode="prefix", prefix_len=P)[0]
        # A token inside the prefix is seen by every prefix position (position 0 included).
        inside = idx.clone()
        inside[:, P - 1] = (idx[:, P - 1] + 3) % (V - 5) + 5
        assert not torch.allclose(model(inside, mode="prefix", prefix_len=P)[0][:, 0], out[:, 0], **ATOL)
        # After the prefix it is causal: changing tokens after t leaves positions <= t alone.
        for t in (P - 1, P + 2):
            after = model(_changed_after(idx, t), mode="prefix", prefix_len=P)[0]
            assert torch.allclose(after[:, : t + 1], out[:, : t + 1], **ATOL)
            assert not torch.allclose(after[:, t + 1:], out[:, t + 1:], **ATOL)
        # prefix_len 1 is causal, prefix_len T bidirectional; a (B,) tensor sets one per row.
        assert torch.allclose(model(idx, mode="prefix", prefix_len=1)[0], model(idx, mode="causal")[0], **ATOL)
        assert torch.allclose(model(idx, mode="prefix", prefix_len=T)[0], model(idx, mode="bidirectional")[0], **ATOL)
        rows = model(idx, mode="prefix", prefix_len=torch.tensor([P, 1]))[0]
        assert torch.allclose(rows[0], out[0], **ATOL)
        assert torch.allclose(rows[1], model(idx, mode="causal")[0][1], **ATOL)


def test_prefix_mask_values_and_mode_checks():
    m = attention_mask_for(None, causal=True, q_len=4, prefix_len=2)
    assert m[0, 0].int().tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    with pytest.raises(ValueError, match="prefix_len is for causal masks"):
        attention_mask_for(None, causal=False, q_len=4, prefix_len=2)
    model = _model()
    with pytest.raises(ValueError, match="mode: expected one of"):
        model(_ids(), mode="sideways")
    with pytest.raises(ValueError, match="prefix_len goes with mode='prefix'"):
        model(_ids(), mode="prefix")
    with pytest.raises(ValueError, match="prefix_len goes with mode='prefix'"):
        model(_ids(), mode="causal", prefix_len=2)


def test_padding_is_ignored_in_both_modes():
    model = _model(head=None)
    idx = _ids()
    mask = torch.ones_like(idx)
    mask[1, 7:] = 0
    padded = idx.clone()
    padded[1, 7:] = 0
    with torch.no_grad():
        for mode in ("causal", "bidirectional"):
            full = model(padded, mode=mode, attention_mask=mask)[0]
            alone = model(idx[1:, :7], mode=mode)[0]
            assert torch.allclose(full[1, :7], alone[0], **ATOL), mode


def _reference_greedy(model, idx: torch.Tensor, n: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """No cache: the whole sequence again for each new token (causal mode)."""
    steps = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(idx, mode="causal")[0][:, -1]  # (B, V)
            steps.append(logits)
            idx = torch.cat((idx, logits.argmax(-1, keepdim=True)), dim=1)
    return idx, steps


def test_cached_generation_equals_uncached():
    model = _model()
    idx = _ids(t=5)
    got = generate(model, idx, max_new_tokens=12)
    expected, steps = _reference_greedy(model, idx, 12)
    assert torch.equal(got, expected)
    # The cached logits of every step match the recomputed ones.
    from gptbert.models.transformer import KVCache

    cache = KVCache.for_model(model, 2, 5 + 12)
    with torch.no_grad():
        logits, _ = model(idx, cache=cache, last_only=True)
        for i in range(12):
            assert torch.allclose(logits[:, -1], steps[i], atol=1e-4, rtol=0.0)
            logits, _ = model(expected[:, 5 + i: 6 + i], cache=cache, last_only=True)
    # Left-padded batches and beam search go through the same loop.
    mask = torch.ones_like(idx)
    mask[0, :2] = 0
    alone = generate(model, idx[:1, 2:], max_new_tokens=6)
    both = generate(model, idx, attention_mask=mask, max_new_tokens=6)
    assert torch.equal(both[0, 2:], alone[0])
    assert generate(model, idx, max_new_tokens=6, num_beams=3).shape[0] == 2


def test_fill_mask_reads_position_i_from_i_minus_1():
    model = _model()
    idx = _ids()
    with torch.no_grad():
        masked = model(idx, mode="masked")[0]  # (B, T, V)
        filled = model.fill_mask_logits(idx)
    assert filled.shape == masked.shape
    assert torch.equal(filled[:, 1:], masked[:, :-1]) and not filled[:, 0].any()
    with pytest.raises(ValueError, match="needs the 'lm' head"):
        _model(head="classify").fill_mask_logits(idx)


def test_task_heads_are_bidirectional_and_lm_defaults_to_causal():
    idx = _ids()
    targets = {"classify": torch.tensor([0, 2]), "tokens": torch.randint(0, 3, (2, T)), "qa": torch.tensor([[1, 3], [2, 2]])}
    shapes = {"classify": (2, 3), "tokens": (2, T, 3), "qa": (2, T, 2)}
    for head in ("classify", "tokens", "qa"):
        model = _model(head=head)
        assert model.default_mode == "bidirectional"
        logits, loss = model(idx, targets[head])
        assert logits.shape == shapes[head] and loss.ndim == 0 and torch.isfinite(loss)
    classify = _model(head="classify")
    with torch.no_grad():
        assert not torch.allclose(classify(idx)[0], classify(_changed_after(idx, T - 2))[0], **ATOL)
    lm = _model()
    assert lm.default_mode == "causal" and lm.lm_head.weight is lm.embeddings.wte.weight
    with torch.no_grad():
        assert torch.equal(lm(idx)[0], lm(idx, mode="causal")[0])
    with pytest.raises(ValueError, match="Hybrid supports heads"):
        _model(head="mlm")


@pytest.mark.parametrize("head", ["lm", "classify", None])
def test_save_and_load_round_trip(tmp_path, head):
    model = _model(head=head)
    save_model(model, tmp_path / "h")
    back = load_model(tmp_path / "h")
    assert back.config == model.config and json.loads((tmp_path / "h" / "config.json").read_text())["family"] == "hybrid"
    idx = _ids()
    with torch.no_grad():
        for mode in ("causal", "masked"):
            assert torch.equal(back(idx, mode=mode)[0], model(idx, mode=mode)[0])
    if head == "lm":
        assert back.lm_head.weight is back.embeddings.wte.weight


def test_info_hybrid_mini(capsys):
    from gptbert.cli import main
    from gptbert.flops import count_parameters_analytic
    from gptbert.models import count_parameters

    config = ModelConfig.from_name("hybrid-mini")
    with torch.device("meta"):
        built = count_parameters(build_model(config))
    assert count_parameters_analytic(config).total == built
    assert main(["info", "hybrid-mini", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["family"] == "hybrid" and info["parameters"] == built and info["counted"] == "analytic"
    assert info["flops_per_token"]["forward"] > 2 * info["non_embedding_parameters"]


def test_text_generation_with_a_wordpiece_tokenizer():
    """Prompts are [CLS] text (no [SEP]: it ends a text), [SEP] is the end token; stream == generate_text."""
    from gptbert.generate import GenerationConfig, generate_text, stream
    from gptbert.generate.text import _ids_of, _with_tokenizer_defaults
    from gptbert.tokenizer import Tokenizer

    texts = ["the film is a gripping and funny ride", "a dull script sinks the cast", "sharp and never dull"] * 4
    tok = Tokenizer.from_texts(texts, "wordpiece", 80, show_progress=False)
    model = _model(vocab_size=tok.vocab_size, pad_token_id=tok.pad_id)
    prompt = [tok.cls_id, *tok.encode("the film", add_special_tokens=False).ids]
    assert _ids_of(tok, "the film") == prompt
    assert _with_tokenizer_defaults(GenerationConfig(), tok).eos_ids == (tok.sep_id,)
    new = generate(model, [prompt], max_new_tokens=6, eos_token_id=tok.sep_id)[0]
    text = generate_text(model, tok, ["the film"], max_new_tokens=6)[0]
    assert text == tok.decode(new)
    assert "".join(stream(model, tok, "the film", max_new_tokens=6)) == text
