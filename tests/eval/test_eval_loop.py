"""The shared loop with a fake model: batching, decoding from config, the blind switch, and
resuming a killed run from the JSONL log."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from eval.errors import EvalError
from eval.run import run
from eval.settings import build


def settings_for(out, task, **values):
    return build({}, {"model": "unused", "out": str(out), "progress": False, **values}, select=[task])


def images_in(prompt):
    return [item for item in prompt if isinstance(item, Image.Image)]


def test_batches_and_decoding_come_from_the_settings(tmp_path, fake_model, vqa_dir):
    model = fake_model(answer=lambda prompt: "a cat<|endofchunk|>Output: more")
    settings = settings_for(tmp_path, "vqav2", data={"path": str(vqa_dir)}, shots=[2], trials=1,
                            batch_size=3, decoding={"num_beams": 3, "max_new_tokens": 7})
    run(settings, model=model)
    assert [len(call) for call in model.calls] == [3, 1]
    assert model.kwargs[0]["num_beams"] == 3 and model.kwargs[0]["max_new_tokens"] == 7
    assert model.kwargs[0]["stop"] == ("<|endofchunk|>", "\n", "Question", "Answer", "Short")
    records = json.loads((tmp_path / "results.json").read_text())["tasks"]["vqav2"]["predictions"]
    assert {r["prediction"] for r in records} == {"a cat"}       # read up to the first stop string
    prompt = model.calls[0][0]
    assert len(images_in(prompt)) == 3 and isinstance(prompt[-1], str)


@pytest.mark.parametrize("task", ["shapes-style", "miniimagenet"])
def test_blind_baseline_shows_only_black_images(tmp_path, fake_model, task, classes_dir):
    seen = []

    def answer(prompt):
        seen.extend(images_in(prompt))
        return "x"

    data = {"data": {"path": str(classes_dir)}} if task == "miniimagenet" else {}
    run(settings_for(tmp_path / "blind", task, shots=[1], trials=1, max_queries=3, blind=True, **data),
        model=fake_model(answer))
    assert seen and all(np.asarray(img).max() == 0 for img in seen)
    seen.clear()
    run(settings_for(tmp_path / "seeing", task, shots=[1], trials=1, max_queries=3, **data),
        model=fake_model(answer))
    assert seen and all(np.asarray(img).max() > 0 for img in seen)
    results = json.loads((tmp_path / "blind" / "results.json").read_text())
    assert results["tasks"][f"{task}-blind"]["blind"] is True


def test_a_killed_run_resumes_where_it_stopped(tmp_path, fake_model):
    def settings():
        return settings_for(tmp_path, "shapes-caption", shots=[0, 1], trials=2, max_queries=3, batch_size=2)

    def answer(prompt):
        return "a big red circle on the left"

    killed = fake_model(answer, fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        run(settings(), model=killed)
    log = tmp_path / "shapes-caption" / "predictions.jsonl"
    assert len(log.read_text().splitlines()) == 5                 # batches of 2, 2 (trial 0), 1 (trial 1)
    with open(log, "a") as handle:                                 # a line torn by the kill
        handle.write('{"shots": 0, "trial": 1, "se')
    resumed = fake_model(answer)
    run(settings(), model=resumed)
    assert sum(len(call) for call in resumed.calls) == 2 * 2 * 3 - 5
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 12 and len({(r["shots"], r["trial"], r["id"]) for r in lines}) == 12
    again = fake_model(answer)
    run(settings(), model=again)                                    # all done: nothing generated
    assert again.calls == []


def test_resuming_with_other_settings_is_refused_until_restart(tmp_path, fake_model):
    base = dict(shots=[0], trials=1, max_queries=2)
    run(settings_for(tmp_path, "shapes-caption", **base), model=fake_model())
    with pytest.raises(EvalError, match="max_new_tokens: 32 -> 8.*--restart"):
        run(settings_for(tmp_path, "shapes-caption", decoding={"max_new_tokens": 8}, **base), model=fake_model())
    model = fake_model()
    run(settings_for(tmp_path, "shapes-caption", decoding={"max_new_tokens": 8}, restart=True, **base),
        model=model)
    assert len(model.calls) == 1


def test_sampling_settings_reach_generate_and_the_run_fingerprint(tmp_path, fake_model):
    from frozen import SamplingOptions

    model = fake_model()
    decoding = {"max_new_tokens": 6, "temperature": 0.7, "top_k": 5, "seed": 3}
    settings = settings_for(tmp_path, "shapes-caption", shots=[0], trials=1, max_queries=2,
                            decoding=decoding)
    assert settings.tasks[0].decoding == SamplingOptions(**decoding)
    run(settings, model=model)
    given = model.kwargs[0]
    assert {k: given[k] for k in decoding} == decoding and given["static_cache"] is False
    # run.json records the decoding keys that decide outputs; min_new_tokens only when set
    recorded = json.loads((tmp_path / "shapes-caption" / "run.json").read_text())["settings"]
    assert set(recorded["decoding"]) == {"max_new_tokens", "num_beams", "temperature", "top_p",
                                         "top_k", "do_sample", "seed"}
    longer = settings_for(tmp_path, "shapes-caption", decoding={"min_new_tokens": 2})
    assert longer.tasks[0].fingerprint()["decoding"]["min_new_tokens"] == 2
    assert longer.tasks[0].decoding.max_new_tokens == 32       # the task's own default stays
