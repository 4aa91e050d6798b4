"""Templates from config, prompt assembly, and reproducible trials (same seed, same prompts)."""

from __future__ import annotations

import pytest

from eval.errors import EvalError
from eval.queries import ImageRef
from eval.selection import RandomSelector
from eval.settings import build
from eval.tasks import task_class
from eval.templates import Template, join, prompt_text

A, B, Q = ImageRef("a"), ImageRef("b"), ImageRef("q")


def test_template_query_and_stop_come_from_the_demo_template():
    t = Template("<image>Output:{caption}<|endofchunk|>", "caption")
    assert t.query_text == "<image>Output:"
    assert t.stop == "<|endofchunk|>"
    assert Template("<image>{caption}\n", "caption").stop == "\n"
    vqa = Template("<image>Question:{question} Short answer:{answer}<|endofchunk|>", "answer")
    assert vqa.render_query({"question": "Why?"}, Q) == ["", Q, "Question:Why? Short answer:"]


def test_prompt_assembly_merges_text_and_drops_images_of_text_only_demos():
    t = Template("<image>Output:{caption}<|endofchunk|>", "caption")
    demos = [t.render_demo({"caption": "a cat"}, A), t.render_demo({"caption": "a dog"}, B)]
    items = join(demos + [t.render_query({}, Q)])
    assert items == [A, "Output:a cat<|endofchunk|>", B, "Output:a dog<|endofchunk|>", Q, "Output:"]
    text_only = join([t.render_demo({"caption": "a cat"}, A, text_only=True), t.render_query({}, Q)])
    assert text_only == ["Output:a cat<|endofchunk|>", Q, "Output:"]
    assert prompt_text(items) == ("<image>Output:a cat<|endofchunk|><image>Output:a dog<|endofchunk|>"
                                  "<image>Output:", ["a", "b", "q"])


@pytest.mark.parametrize("demo, query, message", [
    ("<image>Output:", None, "answer field"),
    ("Output:{caption}", None, "<image> exactly once"),
    ("<image>{caption}", "<image>{caption}", "must not contain"),
])
def test_bad_templates_are_named(demo, query, message):
    with pytest.raises(EvalError, match=message):
        Template(demo, "caption", query)


def test_template_with_an_unknown_field_names_it():
    t = Template("<image>{style}: {caption}", "caption")
    with pytest.raises(EvalError, match=r"\{style\}"):
        t.render_demo({"caption": "x"}, A)


def _coco_task(coco_dir, **extra):
    settings = build({}, {"data": {"path": str(coco_dir)}, "model": "m", "out": "o", **extra},
                     select=["coco"])
    return task_class("coco")(settings.tasks[0])


def test_same_seed_same_prompts_and_another_seed_differs(coco_dir):
    task = _coco_task(coco_dir, max_queries=3)

    def texts(seed, shots=2):
        return [prompt_text(q.prompt)[0] for q in task.queries(shots, seed, RandomSelector())]

    assert texts(0) == texts(0)
    assert texts(0) != texts(1)
    # the same queries at every shot count of a trial, so scores across shots compare like with like

    def ids(shots):
        return [q.id for q in task.queries(shots, 0, RandomSelector())]

    assert ids(0) == ids(2) == ids(4)


def test_demonstrations_never_show_the_query_image(coco_dir):
    task = _coco_task(coco_dir, max_queries=None)
    task._splits["train"] = task.split("train") + task.split("test")     # a pool holding the queries
    for query in task.queries(5, 0, RandomSelector()):
        keys = prompt_text(query.prompt)[1]
        assert keys[-1] == query.image.key and query.image.key not in keys[:-1]


def test_zero_shot_with_text_only_demonstrations(coco_dir):
    task = _coco_task(coco_dir, zero_shot_text_demos=2, max_queries=2)
    for query in task.queries(0, 0, RandomSelector()):
        text, keys = prompt_text(query.prompt)
        assert text.count("<|endofchunk|>") == 2 and text.count("<image>") == 1
        assert text.endswith("<image>Output:") and keys == [query.image.key]


def test_shapes_episodes_follow_the_contract_and_reproduce():
    from frozen.toy.prompts import BINDING_QUERY, NONCE_WORDS

    settings = build({}, {"model": "m", "out": "o", "max_queries": 6},
                     select=["shapes-caption", "shapes-instruction", "shapes-binding"])
    caption, instruction, binding = (task_class(t.task)(t) for t in settings.tasks)
    zero = caption.queries(0, 0, None)
    assert all(len(q.prompt) == 1 and isinstance(q.prompt[0], ImageRef) for q in zero)
    assert [q.references for q in zero] == [q.references for q in caption.queries(0, 0, None)]
    for q in instruction.queries(2, 0, None):
        text, _ = prompt_text(q.prompt)
        assert text.count("<image>") == 3 and text.endswith(f"<image>Caption in {q.group}:")
    for q in binding.queries(1, 0, None):
        text, _ = prompt_text(q.prompt)
        assert text.endswith("<image>" + BINDING_QUERY) and q.references[0] in NONCE_WORDS
        assert text.count("<image>") == 3 and text.count(f"this is a {q.references[0]}.\n") == 1
    assert binding.read(" dax. and more") == "dax"
    assert caption.read(" a big red circle on the left \nmore") == "a big red circle on the left"
