"""Prompt formats 1-5, expected answers and answer readers."""

import numpy as np
from PIL import Image

from frozen.toy.captions import caption
from frozen.toy.prompts import (
    NONCE_WORDS,
    binding_prompt,
    blind,
    instruction_prompt,
    read_caption,
    read_word,
    sample_binding_episode,
    sample_caption_episode,
    sample_instruction_episode,
    sample_style_episode,
    style_prompt,
    zero_shot_prompt,
)
from frozen.toy.render import Attributes, black_image, render_attributes
from frozen.toy.standins import standin

A = Attributes("big", "red", "circle", "left")
B = Attributes("small", "blue", "square", "right")
C = Attributes("big", "green", "triangle", "left")
IMG = "<image>"


def test_formats_as_exact_strings():
    assert zero_shot_prompt(IMG) == [IMG]
    style = style_prompt([(IMG, caption(A, "pirate")), (IMG, caption(B, "pirate"))], IMG)
    assert "".join(style) == (
        "<image>arr, a big red circle be on the left, matey\n"
        "<image>arr, a small blue square be on the right, matey\n<image>"
    )
    instructed = instruction_prompt([(IMG, caption(A, "french"))], IMG, "french")
    assert "".join(instructed) == "<image>Caption in french: un grand cercle rouge à gauche\n<image>Caption in french:"
    binding = binding_prompt([(IMG, "dax"), (IMG, "wug")], IMG)
    assert "".join(binding) == "<image>this is a dax.\n<image>this is a wug.\n<image>Q: what is this? A: this is a"


def test_images_are_separate_items():
    image = render_attributes(A, 0)
    prompt = style_prompt([(image, caption(A))], image)
    assert [type(item) for item in prompt] == [type(image), str, type(image)]
    blinded = blind(prompt)
    assert all(not np.asarray(item).any() for item in blinded if isinstance(item, Image.Image))
    assert blinded[1] == prompt[1]
    assert black_image().size == image.size


def test_readers():
    assert read_caption(" a big red circle on the left\n<junk>") == "a big red circle on the left"
    assert read_caption("un grand cercle rouge à gauche") == "un grand cercle rouge à gauche"
    assert read_word(" dax.\nthis is") == "dax"
    assert read_word(" blicket") == "blicket"
    assert read_word("\n") == ""


def test_episodes_answers_and_scoring():
    rng = np.random.default_rng(0)
    episode = sample_caption_episode(rng, image=standin, split="heldout")
    assert episode.query.is_held_out and episode.answer == caption(episode.query)
    assert episode.prompt == [standin(episode.query)]
    episode = sample_style_episode(rng, "terse", 4, image=standin)
    assert episode.shots == 4 and len(episode.prompt) == 9
    assert episode.answer == caption(episode.query, "terse") and episode.is_correct(f"{episode.answer}\nfoo")
    assert all(item != standin(episode.query) for item in episode.prompt[:-1:2]), "demos differ from the query"
    episode = sample_instruction_episode(rng, "shout", 2, image=standin)
    assert episode.prompt[-1] == "Caption in shout:" and episode.is_correct(" " + episode.answer)
    assert not episode.is_correct("  " + episode.answer.lower())


def test_binding_episodes_bind_each_name_to_one_shape():
    rng = np.random.default_rng(3)
    for ways in (2, 4):
        for _ in range(50):
            episode = sample_binding_episode(rng, ways, image=lambda a, r: a)
            demos = list(zip(episode.prompt[0:-2:2], episode.prompt[1:-2:2]))
            names = [text.removeprefix("this is a ").removesuffix(".\n") for _, text in demos]
            assert len(demos) == ways and len(set(names)) == ways and set(names) <= set(NONCE_WORDS)
            assert len({a.shape for a, _ in demos}) == ways
            shape_of = {name: a.shape for (a, _), name in zip(demos, names)}
            assert shape_of[episode.answer] == episode.query.shape == episode.prompt[-2].shape
            assert episode.prompt[-1] == "Q: what is this? A: this is a"
            assert episode.is_correct(f" {episode.answer}.") and not episode.is_correct(" this")
