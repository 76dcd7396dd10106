"""bert2gpt: cross-attention against a hand computation, cached == uncached decoding, starting
from pre-trained halves (ours and Hugging Face), save / load."""

from __future__ import annotations

import math

import pytest
import torch

from gptbert.config import ModelConfig
from gptbert.generate import generate
from gptbert.io.checkpoint import load_encoder_decoder, load_model, save_model
from gptbert.models import build_model
from gptbert.models.encdec import EncoderDecoder
from gptbert.models.transformer import Block, CrossAttention, KVCache

ATOL = dict(atol=1e-5, rtol=0.0)
V_SRC, V_TGT = 61, 83


def _bert(**kw) -> ModelConfig:
    return ModelConfig(**{**dict(family="bert", n_layer=2, n_head=2, n_embd=24, intermediate_size=30, block_size=32,
                                 vocab_size=V_SRC, dropout=0.0), **kw})


def _gpt(**kw) -> ModelConfig:
    return ModelConfig(**{**dict(family="gpt", n_layer=2, n_head=4, n_embd=32, intermediate_size=37, block_size=32,
                                 vocab_size=V_TGT, dropout=0.0, head="lm"), **kw})


def _encdec(seed: int = 0) -> EncoderDecoder:
    torch.manual_seed(seed)
    return build_model(ModelConfig(family="encdec", encoder=_bert(), decoder=_gpt())).eval()


def _sources() -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.randint(4, V_SRC, (2, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(src)
    mask[1, 4:] = 0
    src[1, 4:] = 0
    return src, mask


def test_config_fixes_the_roles_and_mirrors_the_decoder():
    config = ModelConfig(family="encdec", encoder=_bert(head="mlm").to_dict(), decoder=_gpt(head=None))
    assert config.encoder.head is None and not config.encoder.add_pooler
    assert config.decoder.head == "lm" and config.decoder.cross_attention and config.decoder.cross_attention_dim == 24
    assert (config.vocab_size, config.n_embd, config.block_size, config.head) == (V_TGT, 32, 32, "lm")
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="needs both an encoder and a decoder"):
        ModelConfig(family="encdec", encoder=_bert())
    with pytest.raises(ValueError, match="decoder: expected family 'gpt'"):
        ModelConfig(family="encdec", encoder=_bert(), decoder=_bert())
    with pytest.raises(ValueError, match="only GPT decoders have cross-attention"):
        _bert(cross_attention=True)
    with pytest.raises(ValueError, match="sub-configs are for family 'encdec'"):
        ModelConfig(family="gpt", encoder=_bert())
    assert "encoder" not in _gpt().to_dict()  # plain configs do not grow the sub-config keys


def test_cross_attention_equals_a_hand_computation():
    torch.manual_seed(0)
    config = _gpt(cross_attention=True, cross_attention_dim=24)
    attn = CrossAttention(config).eval()
    x, enc = torch.randn(2, 5, 32), torch.randn(2, 7, 24)
    keep = torch.ones(2, 7, dtype=torch.bool)
    keep[1, 4:] = False
    out = attn(x, enc, keep[:, None, None, :])

    H, hs = 4, 8
    q = (x @ attn.q.weight.T + attn.q.bias).view(2, 5, H, hs).transpose(1, 2)  # (B, H, T, hs)
    kv = enc @ attn.kv.weight.T + attn.kv.bias  # (B, S, 2 H hs)
    k = kv[..., : H * hs].view(2, 7, H, hs).transpose(1, 2)  # (B, H, S, hs)
    v = kv[..., H * hs:].view(2, 7, H, hs).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hs)  # (B, H, T, S)
    scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, H * hs)  # (B, T, H hs)
    expected = y @ attn.proj.weight.T + attn.proj.bias
    assert torch.allclose(out, expected, **ATOL)
    # Padded encoder positions have no influence.
    enc2 = enc.clone()
    enc2[1, 4:] = 100.0
    assert torch.allclose(attn(x, enc2, keep[:, None, None, :]), out, **ATOL)

    # In a block the sublayer sits between self-attention and the MLP, pre- or post-LN.
    for norm in ("pre", "post"):
        torch.manual_seed(1)
        block = Block(_gpt(norm=norm, cross_attention=True, cross_attention_dim=24), causal=True,
                      cross_attention=True).eval()
        m = keep[:, None, None, :]
        if norm == "pre":
            h = x + block.attn(block.ln_1(x))
            h = h + block.cross_attn(block.ln_cross(h), enc, m)
            h = h + block.mlp(block.ln_2(h))
        else:
            h = block.ln_1(x + block.attn(x))
            h = block.ln_cross(h + block.cross_attn(h, enc, m))
            h = block.ln_2(h + block.mlp(h))
        assert torch.allclose(block(x, encoder_states=enc, encoder_mask=m), h, **ATOL)
        with pytest.raises(ValueError, match="pass encoder_states"):
            block(x)


def test_forward_shapes_loss_and_source_padding():
    model = _encdec()
    src, src_mask = _sources()
    idx = torch.randint(0, V_TGT, (2, 6))
    logits, loss = model(src, idx, idx, src_mask=src_mask)
    assert logits.shape == (2, 6, V_TGT) and torch.isfinite(loss)
    with torch.no_grad():
        alone = model(src[1:, :4], idx[1:])[0]
        assert torch.allclose(logits[1], alone[0], **ATOL)
        # The decoder is causal: later target tokens do not change earlier logits.
        later = idx.clone()
        later[:, 3:] = (idx[:, 3:] + 1) % V_TGT
        assert torch.allclose(model(src, later, src_mask=src_mask)[0][:, :3], logits[:, :3], **ATOL)


def _reference_greedy(model, src, src_mask, idx, n):
    """No cache: encoder and decoder over the whole sequence again for each new token."""
    steps = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(src, idx, src_mask=src_mask)[0][:, -1]  # (B, V)
            steps.append(logits)
            idx = torch.cat((idx, logits.argmax(-1, keepdim=True)), dim=1)
    return idx, steps


def test_cached_decoding_equals_uncached():
    model = _encdec()
    src, src_mask = _sources()
    bos = torch.full((2, 1), 3)
    got = generate(model, bos, source=src, source_mask=src_mask, max_new_tokens=10)
    expected, steps = _reference_greedy(model, src, src_mask, bos, 10)
    assert torch.equal(got, expected)
    decoder = model.conditioned(src, src_mask)
    cache = KVCache.for_model(decoder, 2, 11)
    with torch.no_grad():
        logits, _ = decoder(bos, cache=cache, last_only=True)
        cross = [kv[0] for kv in cache.cross_kv]
        for i in range(10):
            assert torch.allclose(logits[:, -1], steps[i], atol=1e-4, rtol=0.0)
            logits, _ = decoder(expected[:, 1 + i: 2 + i], cache=cache, last_only=True)
    assert all(kv[0] is c for kv, c in zip(cache.cross_kv, cross))  # computed once, reused
    with pytest.raises(ValueError, match="pass generate\\(..., source=src_ids\\)"):
        generate(model, bos, max_new_tokens=2)


def test_beam_search_repeats_each_source_per_beam():
    model = _encdec()
    src, src_mask = _sources()
    bos = torch.full((2, 1), 3)
    both = generate(model, bos, source=src, source_mask=src_mask, max_new_tokens=6, num_beams=3)
    for row in range(2):
        alone = generate(model, bos[row:row + 1], source=src[row:row + 1, : 7 if row == 0 else 4],
                         max_new_tokens=6, num_beams=3)
        assert torch.equal(both[row, : alone.size(1)], alone[0])
    greedy = generate(model, bos, source=src, source_mask=src_mask, max_new_tokens=6)
    assert torch.equal(generate(model, bos, source=src, source_mask=src_mask, max_new_tokens=6, num_beams=1), greedy)


def test_kv_cache_reorder_moves_cross_keys_too():
    cache = KVCache([2], batch_size=3, max_len=4, head_size=5)
    k = torch.randn(3, 2, 6, 5)
    cache.cross(0, lambda: (k, k + 1))
    cache.reorder(torch.tensor([2, 2, 0]))
    assert torch.equal(cache.cross_kv[0][0][1], k[2]) and torch.equal(cache.cross_kv[0][1][2], k[0] + 1)


def _halves() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(3)
    return build_model(_bert(head="mlm")).eval(), build_model(_gpt()).eval()


def test_from_models_copies_both_halves_and_starts_as_the_gpt():
    bert, gpt = _halves()
    model = EncoderDecoder.from_models(bert, gpt).eval()
    assert torch.equal(model.encoder.blocks[1].attn.qkv.weight, bert.blocks[1].attn.qkv.weight)
    assert torch.equal(model.decoder.embeddings.wte.weight, gpt.embeddings.wte.weight)
    assert model.decoder.lm_head.weight is model.decoder.embeddings.wte.weight
    src, src_mask = _sources()
    idx = torch.randint(0, V_TGT, (2, 6))
    with torch.no_grad():  # zero cross-attention output: the decoder computes what the GPT did
        assert torch.allclose(model(src, idx, src_mask=src_mask)[0], gpt(idx)[0], **ATOL)
        assert torch.allclose(model.encode(src, src_mask=src_mask), bert.encode(src, attention_mask=src_mask), **ATOL)
    # One training step moves the cross-attention: the source starts to matter.
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    for _ in range(2):
        opt.zero_grad()
        model(src, idx, idx, src_mask=src_mask)[1].backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        other = (src + 1) % V_SRC
        assert not torch.allclose(model(src, idx)[0], model(other, idx)[0], **ATOL)
    with pytest.raises(ValueError, match="encoder: expected family"):
        EncoderDecoder.from_models(gpt, gpt)


def test_load_encoder_decoder_from_our_and_hugging_face_directories(tmp_path):
    from gptbert.io.hf import export_hf

    bert, gpt = _halves()
    save_model(bert, tmp_path / "bert")
    export_hf(gpt, tmp_path / "gpt2-hf")
    export_hf(bert, tmp_path / "bert-hf")
    src, _ = _sources()
    idx = torch.randint(0, V_TGT, (2, 5))
    with torch.no_grad():
        reference = EncoderDecoder.from_models(bert, gpt)(src, idx)[0]
        for enc in (tmp_path / "bert", tmp_path / "bert-hf"):
            model = load_encoder_decoder(enc, tmp_path / "gpt2-hf")
            assert not model.training
            assert torch.allclose(model(src, idx)[0], reference, **ATOL)
    with pytest.raises(ValueError, match="cannot export"):
        export_hf(model.decoder, tmp_path / "nope")


def test_save_and_load_round_trip_with_two_vocabularies(tmp_path):
    model = _encdec(seed=5)
    with torch.no_grad():  # the round trip must carry trained-looking, non-zero cross-attention
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_model(model, tmp_path / "b2g")
    back = load_model(tmp_path / "b2g")
    assert back.config == model.config
    assert back.config.encoder.vocab_size == V_SRC and back.config.decoder.vocab_size == V_TGT
    assert back.decoder.lm_head.weight is back.decoder.embeddings.wte.weight
    src, src_mask = _sources()
    bos = torch.full((2, 1), 3)
    idx = torch.randint(0, V_TGT, (2, 6))
    with torch.no_grad():
        assert torch.equal(back(src, idx, src_mask=src_mask)[0], model(src, idx, src_mask=src_mask)[0])
    assert torch.equal(generate(back, bos, source=src, source_mask=src_mask, max_new_tokens=5),
                       generate(model, bos, source=src, source_mask=src_mask, max_new_tokens=5))


@pytest.mark.parametrize("name", ["bert2gpt-micro", "bert2gpt-mini"])
def test_presets_count_like_their_halves(name):
    from gptbert.flops import count_parameters_analytic
    from gptbert.models import count_parameters

    config = ModelConfig.from_name(name)
    with torch.device("meta"):
        model = build_model(config)
    analytic = count_parameters_analytic(config)
    assert analytic.total == count_parameters(model)
    assert analytic.non_embedding == count_parameters(model, non_embedding=True)
    halves = sum(count_parameters_analytic(c.replace(cross_attention=False)).total
                 for c in (config.encoder, config.decoder))
    C, D = config.decoder.n_embd, config.encoder.n_embd
    cross = config.decoder.n_layer * (2 * C + (C * C + C) + (D * 2 * C + 2 * C) + (C * C + C))
    assert analytic.total == halves + cross


def test_hybrid_encoder():
    config = ModelConfig(family="encdec", encoder=ModelConfig(family="hybrid", n_layer=1, n_head=2, n_embd=16,
                                                              block_size=16, vocab_size=V_SRC), decoder=_gpt())
    model = build_model(config).eval()
    src, src_mask = _sources()
    logits, _ = model(src, torch.zeros(2, 3, dtype=torch.long), src_mask=src_mask)
    assert logits.shape == (2, 3, V_TGT) and torch.isfinite(logits).all()
