"""`--aug` specs: parsing, option checks against the builder, composition in order and choice per batch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from zoo_core import BadInputError, Registry, UnknownNameError
from zoo_core.augment import AugCall, build_augmentations, parse_aug_spec, parse_value

# -- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-2", -2),
        ("0.5", 0.5),
        ("1e-3", 1e-3),
        ("true", True),
        ("False", False),
        ("none", None),
        ("reflection", "reflection"),
    ],
)
def test_option_values_read_as_int_float_bool_none_or_text(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_a_spec_is_a_name_with_options():
    assert parse_aug_spec("cutmix:alpha=1.0,p=0.5") == [AugCall("cutmix", {"alpha": 1.0, "p": 0.5})]
    assert parse_aug_spec(" Flip ") == [AugCall("flip", {})]


def test_a_choice_lists_alternatives_with_optional_weights():
    calls = parse_aug_spec("mixup:alpha=0.2@0.3|cutmix@0.7|cutout")
    assert [(c.name, c.options, c.weight) for c in calls] == [
        ("mixup", {"alpha": 0.2}, 0.3),
        ("cutmix", {}, 0.7),
        ("cutout", {}, 1.0),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Empty augmentation spec"),
        (":alpha=1", "a name is missing"),
        ("cutmix:alpha", "'alpha' is not option=value"),
        ("cutmix:alpha=", "'alpha=' is not option=value"),
        ("cutmix:alpha=1,alpha=2", "option 'alpha' is given twice"),
        ("mixup@0|cutmix", "weight '0' must be a positive number"),
        ("mixup@heavy|cutmix", "weight 'heavy' must be a positive number"),
        ("mixup||cutmix", "a name is missing"),
    ],
)
def test_a_malformed_spec_says_what_is_wrong(text, message):
    with pytest.raises(BadInputError, match=message):
        parse_aug_spec(text)


# -- building from the real catalog ----------------------------------------------------------------


def test_no_specs_build_no_pipeline(catalog):
    assert build_augmentations([], num_classes=10, catalog=catalog) is None


def test_an_unknown_augmentation_suggests_a_close_name(catalog):
    with pytest.raises(UnknownNameError, match=r"Unknown augmentation 'cutmx'\. Did you mean 'cutmix'"):
        build_augmentations(["cutmx"], num_classes=10, catalog=catalog)


def test_an_unknown_option_names_the_augmentation_and_lists_the_options(catalog):
    with pytest.raises(BadInputError) as info:
        build_augmentations(["cutmix:alhpa=1.0"], num_classes=10, catalog=catalog)
    assert (
        str(info.value)
        == "Augmentation 'cutmix' has no option 'alhpa'. Did you mean 'alpha'? (options: alpha, p)"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cutmix:alpha=abc", "Augmentation 'cutmix': option 'alpha' must be a number, got 'abc'"),
        ("cutout:size=1.5", "Augmentation 'cutout': option 'size' must be an integer or none, got '1.5'"),
        ("mixup:alpha=-1", "Augmentation 'mixup': option 'alpha' must be > 0, got -1.0"),
        ("rotate:padding_mode=3", "Augmentation 'rotate': option 'padding_mode' must be zeros or border"),
        ("mixup:num_classes=3", "Augmentation 'mixup': option 'num_classes' is set from the data set"),
        ("colorjitter:mean=0.5", "Augmentation 'colorjitter': option 'mean' is set from the data set"),
    ],
)
def test_a_bad_option_value_names_the_option_and_the_augmentation(catalog, spec, message):
    with pytest.raises(BadInputError, match=message):
        build_augmentations([spec], num_classes=10, catalog=catalog)


def test_values_are_fitted_to_the_options_types(catalog):
    pipeline = build_augmentations(
        ["cutmix:alpha=2,p=1", "cutout:size=none"], num_classes=10, catalog=catalog
    )
    cutmix, cutout = (stage.augment for stage in pipeline.stages)
    assert cutmix.alpha == 2.0 and type(cutmix.alpha) is float and cutout.size is None


def test_the_data_sets_normalization_reaches_the_builders_that_take_it(catalog):
    pipeline = build_augmentations(
        ["colorjitter", "cutmix"], num_classes=10, catalog=catalog, mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.2]
    )
    jitter, cutmix = (stage.augment for stage in pipeline.stages)
    assert jitter.mean == (0.5, 0.4, 0.3) and jitter.std == (0.2, 0.2, 0.2)
    assert cutmix.num_classes == 10


def test_the_pipeline_says_whether_targets_may_become_soft(catalog):
    def soft(*specs):
        return build_augmentations(list(specs), num_classes=10, catalog=catalog).soft_targets

    assert not soft("flip", "crop:padding=4", "cutout")
    assert soft("flip", "mixup")
    assert soft("flip|cutmix")


def test_describe_gives_the_normalized_specs(catalog):
    pipeline = build_augmentations(["Flip", "mixup:alpha=0.2@3|cutmix"], num_classes=10, catalog=catalog)
    assert pipeline.specs == ["flip", "mixup:alpha=0.2@3|cutmix@1"]
    assert pipeline.describe() == "flip → mixup:alpha=0.2@3|cutmix@1"


def test_a_real_pipeline_runs_seeded_on_a_batch(catalog):
    pipeline = build_augmentations(
        ["crop:padding=4", "flip", "mixup:alpha=0.2|cutmix:alpha=1.0", "cutout"],
        num_classes=10,
        catalog=catalog,
    )
    x, y = torch.randn(9, 3, 32, 32), torch.randint(0, 10, (9,))
    out1 = pipeline(x, y, torch.Generator().manual_seed(5))
    out2 = pipeline(x, y, torch.Generator().manual_seed(5))
    assert torch.equal(out1[0], out2[0]) and torch.equal(out1[1], out2[1])
    assert out1[1].shape == (9, 10)
    torch.testing.assert_close(out1[1].sum(1), torch.ones(9))


# -- composition and choice, with augmentations whose effect is plain ------------------------------


def _plus(*, num_classes: int, amount: float = 1.0):
    """Add a constant."""
    return lambda x, y, generator=None: (x + amount, y)


def _times(*, num_classes: int, factor: float = 2.0):
    """Multiply by a constant."""
    return lambda x, y, generator=None: (x * factor, y)


def _smooth(*, num_classes: int):
    """Turn labels into uniform soft targets (a stand-in for a mixing augmentation)."""
    return lambda x, y, generator=None: (x, torch.full((x.shape[0], num_classes), 1.0 / num_classes))


def _loose(**kwargs):
    """A third-party builder that takes anything and checks its values itself."""
    if kwargs.get("level", 0) > 3:
        raise ValueError("level must be at most 3")
    return lambda x, y, generator=None: (x + kwargs.get("level", 0), y)


@pytest.fixture
def toy_catalog():
    registry = Registry("augmentation")
    registry.register("plus", _plus, level="batch", soft_targets=False)
    registry.register("times", _times, level="batch", soft_targets=False)
    registry.register("smooth", _smooth, level="batch", soft_targets=True)
    registry.register("loose", _loose, level="batch", soft_targets=False)
    registry.register("jpeg", lambda **kw: None, level="sample", soft_targets=False)
    return SimpleNamespace(augmentations=registry)


def test_several_specs_apply_in_order(toy_catalog):
    x, y = torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.long)
    plus_then_times = build_augmentations(
        ["plus:amount=1", "times:factor=3"], num_classes=4, catalog=toy_catalog
    )
    times_then_plus = build_augmentations(
        ["times:factor=3", "plus:amount=1"], num_classes=4, catalog=toy_catalog
    )
    assert (plus_then_times(x, y)[0] == 3).all()
    assert (times_then_plus(x, y)[0] == 1).all()


def test_a_choice_picks_one_alternative_per_batch_by_weight(toy_catalog):
    choice = build_augmentations(["plus:amount=1@3|times:factor=0@1"], num_classes=4, catalog=toy_catalog)
    x, y = torch.full((5, 1, 2, 2), 7.0), torch.zeros(5, dtype=torch.long)
    picks = []
    for seed in range(400):
        out = choice(x, y, torch.Generator().manual_seed(seed))[0]
        assert (out == 8).all() or (out == 0).all()  # the whole batch took one alternative
        picks.append(bool((out == 8).all()))
    assert 0.68 < sum(picks) / len(picks) < 0.82  # weights 3:1


def test_a_choice_repeats_with_the_seed(toy_catalog):
    choice = build_augmentations(["plus|times"], num_classes=4, catalog=toy_catalog)
    x, y = torch.ones(3, 1, 2, 2), torch.zeros(3, dtype=torch.long)
    runs = [
        [choice(x, y, torch.Generator().manual_seed(s))[0][0, 0, 0, 0].item() for s in range(20)]
        for _ in "ab"
    ]
    assert runs[0] == runs[1] and set(runs[0]) == {2.0}


def test_a_choice_with_a_mixing_alternative_always_gives_soft_targets(toy_catalog):
    choice = build_augmentations(["plus|smooth"], num_classes=4, catalog=toy_catalog)
    assert choice.soft_targets
    x, y = torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 3])
    for seed in range(10):
        out_y = choice(x, y, torch.Generator().manual_seed(seed))[1]
        assert out_y.shape == (3, 4)
        assert torch.equal(out_y, torch.full((3, 4), 0.25)) or torch.equal(out_y, torch.eye(4)[y])


def test_a_builder_taking_any_keyword_gets_the_options_and_its_value_errors_become_bad_input(toy_catalog):
    pipeline = build_augmentations(["loose:level=2"], num_classes=4, catalog=toy_catalog)
    assert (pipeline(torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.long))[0] == 2).all()
    with pytest.raises(BadInputError, match="Augmentation 'loose': level must be at most 3"):
        build_augmentations(["loose:level=9"], num_classes=4, catalog=toy_catalog)


def test_a_sample_level_augmentation_is_refused_with_the_batch_ones_listed(toy_catalog):
    with pytest.raises(
        BadInputError,
        match=r"'jpeg' is sample-level .* batch-level augmentations: loose, plus, smooth, times$",
    ):
        build_augmentations(["jpeg"], num_classes=4, catalog=toy_catalog)
