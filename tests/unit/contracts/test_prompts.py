"""maskgate.contracts.prompts: the prompt payload (pure validation, no I/O)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from maskgate.contracts.prompts import Prompts, SegmentationCreate, parse_prompts
from maskgate.errors import InvalidRequest, MissingPrompt

POINT = {"x": 120, "y": 80, "label": 1}
BOX = {"x_min": 10, "y_min": 20, "x_max": 200, "y_max": 180}


def _invalid(raw: object, model: type[Prompts] = Prompts) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_prompts(raw, model)
    assert not isinstance(caught.value, MissingPrompt)
    return caught.value


def _locs(exc: InvalidRequest) -> set[str]:
    return {err["loc"] for err in exc.errors}


# --- valid payloads -------------------------------------------------------------------------


def test_prompts_accepts_text_prompt_alone():
    prompts = parse_prompts({"prompt": "the cat"})

    assert prompts.prompt == "the cat"
    assert prompts.point_prompts == []
    assert prompts.box_prompts == []


def test_prompts_accepts_point_prompts_alone():
    prompts = parse_prompts({"point_prompts": [POINT]})

    assert prompts.prompt is None
    assert [(p.x, p.y, p.label) for p in prompts.point_prompts] == [(120, 80, 1)]


def test_prompts_accepts_box_prompts_alone():
    prompts = parse_prompts({"box_prompts": [BOX]})

    box = prompts.box_prompts[0]
    assert (box.x_min, box.y_min, box.x_max, box.y_max) == (10, 20, 200, 180)


def test_prompts_accepts_the_full_design_example():
    raw = {
        "prompt": "the cat",
        "point_prompts": [POINT],
        "box_prompts": [BOX],
        "apply_mask": False,
        "output_format": "png",
        "webhook_url": "https://example.com/hooks/maskgate",
        "metadata": {"any": "string values"},
    }

    prompts = parse_prompts(raw)

    assert prompts.webhook_url == "https://example.com/hooks/maskgate"
    assert prompts.metadata == {"any": "string values"}


def test_prompts_defaults_apply_mask_false_png_no_metadata():
    prompts = parse_prompts({"prompt": "dog"})

    assert prompts.apply_mask is False
    assert prompts.output_format == "png"
    assert prompts.metadata == {}
    assert prompts.webhook_url is None


def test_prompts_is_frozen_after_parsing():
    prompts = parse_prompts({"prompt": "dog"})

    with pytest.raises(ValidationError):
        prompts.prompt = "cat"  # type: ignore[misc]


# --- prompt text ----------------------------------------------------------------------------


def test_prompts_trims_prompt():
    assert parse_prompts({"prompt": "  \t the cat \n"}).prompt == "the cat"


@pytest.mark.parametrize("blank", ["", " ", "\t\n  "])
def test_prompts_refuses_blank_prompt(blank):
    exc = _invalid({"prompt": blank})

    assert _locs(exc) == {"prompt"}


def test_prompts_accepts_prompt_of_1000_chars_after_trim():
    text = "a" * 1000

    assert parse_prompts({"prompt": f"   {text}  "}).prompt == text


def test_prompts_refuses_prompt_of_1001_chars():
    exc = _invalid({"prompt": "a" * 1001})

    assert _locs(exc) == {"prompt"}


@pytest.mark.parametrize("value", [123, ["cat"], {"text": "cat"}, True])
def test_prompts_refuses_non_string_prompt(value):
    exc = _invalid({"prompt": value})

    assert _locs(exc) == {"prompt"}


# --- points and boxes -----------------------------------------------------------------------


def test_prompts_accepts_64_points():
    prompts = parse_prompts({"point_prompts": [POINT] * 64})

    assert len(prompts.point_prompts) == 64


def test_prompts_refuses_65_points():
    exc = _invalid({"point_prompts": [POINT] * 65})

    assert _locs(exc) == {"point_prompts"}


def test_prompts_accepts_64_boxes():
    prompts = parse_prompts({"box_prompts": [BOX] * 64})

    assert len(prompts.box_prompts) == 64


def test_prompts_refuses_65_boxes():
    exc = _invalid({"box_prompts": [BOX] * 65})

    assert _locs(exc) == {"box_prompts"}


def test_point_label_defaults_to_include():
    prompts = parse_prompts({"point_prompts": [{"x": 1, "y": 2}]})

    assert prompts.point_prompts[0].label == 1


@pytest.mark.parametrize("label", [0, 1])
def test_point_accepts_label_0_and_1(label):
    prompts = parse_prompts({"point_prompts": [{"x": 1, "y": 2, "label": label}]})

    assert prompts.point_prompts[0].label == label


@pytest.mark.parametrize("label", [2, -1, "1", "include", 0.5, None])
def test_point_refuses_label_other_than_0_or_1(label):
    exc = _invalid({"point_prompts": [{"x": 1, "y": 2, "label": label}]})

    assert _locs(exc) == {"point_prompts.0.label"}


@pytest.mark.parametrize("label", [True, False])
def test_point_refuses_boolean_label(label):
    _invalid({"point_prompts": [{"x": 1, "y": 2, "label": label}]})


@pytest.mark.parametrize("x", [0, 0.0, 7, 7.25, 1e6])
def test_point_accepts_non_negative_int_and_float_coordinates(x):
    prompts = parse_prompts({"point_prompts": [{"x": x, "y": 0}]})

    assert prompts.point_prompts[0].x == x


BAD_COORDINATES = [
    pytest.param(-1, id="negative"),
    pytest.param(-0.5, id="negative-float"),
    pytest.param(True, id="bool-true"),
    pytest.param(False, id="bool-false"),
    pytest.param("12", id="numeric-string"),
    pytest.param("x", id="string"),
    pytest.param(None, id="null"),
    pytest.param([1], id="list"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="inf"),
]


@pytest.mark.parametrize("value", BAD_COORDINATES)
def test_point_refuses_bad_coordinate(value):
    exc = _invalid({"point_prompts": [{"x": value, "y": 5}]})

    assert _locs(exc) == {"point_prompts.0.x"}


@pytest.mark.parametrize("value", BAD_COORDINATES)
def test_box_refuses_bad_coordinate(value):
    exc = _invalid({"box_prompts": [{"x_min": 0, "y_min": value, "x_max": 10, "y_max": 10}]})

    assert _locs(exc) == {"box_prompts.0.y_min"}


@pytest.mark.parametrize(
    "box",
    [
        pytest.param({"x_min": 5, "y_min": 0, "x_max": 5, "y_max": 10}, id="x-equal"),
        pytest.param({"x_min": 6, "y_min": 0, "x_max": 5, "y_max": 10}, id="x-reversed"),
        pytest.param({"x_min": 0, "y_min": 9, "x_max": 5, "y_max": 9}, id="y-equal"),
        pytest.param({"x_min": 0, "y_min": 9.5, "x_max": 5, "y_max": 9}, id="y-reversed"),
    ],
)
def test_box_refuses_min_not_below_max(box):
    exc = _invalid({"box_prompts": [box]})

    assert _locs(exc) == {"box_prompts.0"}


def test_box_accepts_fractional_extent():
    prompts = parse_prompts({"box_prompts": [{"x_min": 0, "y_min": 0, "x_max": 0.5, "y_max": 0.5}]})

    assert prompts.box_prompts[0].x_max == 0.5


def test_point_refuses_unknown_field():
    exc = _invalid({"point_prompts": [{"x": 1, "y": 2, "object_id": 3}]})

    assert _locs(exc) == {"point_prompts.0.object_id"}


def test_box_refuses_unknown_field():
    exc = _invalid({"box_prompts": [{**BOX, "label": 1}]})

    assert _locs(exc) == {"box_prompts.0.label"}


def test_box_refuses_missing_corner():
    exc = _invalid({"box_prompts": [{"x_min": 1, "y_min": 2, "x_max": 3}]})

    assert _locs(exc) == {"box_prompts.0.y_max"}


# --- output format, metadata, unknown fields ------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_prompts_accepts_each_output_format(fmt):
    assert parse_prompts({"prompt": "cat", "output_format": fmt}).output_format == fmt


@pytest.mark.parametrize("fmt", ["PNG", "jpg", "gif", "tiff", "", None, 1])
def test_prompts_refuses_other_output_formats(fmt):
    exc = _invalid({"prompt": "cat", "output_format": fmt})

    assert _locs(exc) == {"output_format"}


def test_prompts_accepts_16_metadata_keys():
    metadata = {f"k{i}": f"v{i}" for i in range(16)}

    assert parse_prompts({"prompt": "cat", "metadata": metadata}).metadata == metadata


def test_prompts_refuses_17_metadata_keys():
    exc = _invalid({"prompt": "cat", "metadata": {f"k{i}": "v" for i in range(17)}})

    assert _locs(exc) == {"metadata"}


@pytest.mark.parametrize("value", [1, 1.5, True, None, ["a"], {"a": "b"}])
def test_prompts_refuses_non_string_metadata_values(value):
    exc = _invalid({"prompt": "cat", "metadata": {"order": value}})

    assert all(loc.startswith("metadata") for loc in _locs(exc))


def test_prompts_accepts_empty_string_metadata_value():
    assert parse_prompts({"prompt": "cat", "metadata": {"note": ""}}).metadata == {"note": ""}


@pytest.mark.parametrize("field", ["promt", "image_url", "enable_sync_mode", "mask"])
def test_prompts_refuses_unknown_top_level_field(field):
    exc = _invalid({"prompt": "cat", field: "x"})

    assert _locs(exc) == {field}


def test_prompts_refuses_image_field():
    exc = _invalid({"prompt": "cat", "image": "https://example.com/cat.png"})

    assert _locs(exc) == {"image"}


def test_segmentation_create_accepts_image_with_prompt():
    created = parse_prompts({"image": "https://example.com/cat.png", "prompt": "cat"}, SegmentationCreate)

    assert isinstance(created, SegmentationCreate)
    assert created.image == "https://example.com/cat.png"


def test_segmentation_create_requires_image():
    exc = _invalid({"prompt": "cat"}, SegmentationCreate)

    assert _locs(exc) == {"image"}


def test_segmentation_create_refuses_empty_image():
    exc = _invalid({"prompt": "cat", "image": ""}, SegmentationCreate)

    assert _locs(exc) == {"image"}


# --- parse_prompts error typing --------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({}, id="empty"),
        pytest.param({"prompt": None}, id="null-prompt"),
        pytest.param({"point_prompts": [], "box_prompts": []}, id="empty-lists"),
        pytest.param({"apply_mask": True, "metadata": {"a": "b"}}, id="options-only"),
    ],
)
def test_parse_prompts_raises_missing_prompt_without_any_prompt_kind(raw):
    with pytest.raises(MissingPrompt) as caught:
        parse_prompts(raw)

    assert caught.value.type == "missing_prompt"


def test_parse_prompts_missing_prompt_carries_errors_list():
    with pytest.raises(MissingPrompt) as caught:
        parse_prompts({})

    assert len(caught.value.errors) == 1
    assert set(caught.value.errors[0]) == {"loc", "msg"}


def test_parse_prompts_invalid_request_has_loc_and_msg():
    exc = _invalid({"prompt": "cat", "output_format": "gif"})

    assert exc.type == "invalid_request"
    assert len(exc.errors) == 1
    assert set(exc.errors[0]) == {"loc", "msg"}
    assert exc.errors[0]["loc"] == "output_format"
    assert isinstance(exc.errors[0]["msg"], str) and exc.errors[0]["msg"]


def test_parse_prompts_invalid_request_lists_every_error():
    exc = _invalid({"prompt": "cat", "output_format": "gif", "point_prompts": [{"x": -1, "y": 0}]})

    assert _locs(exc) == {"output_format", "point_prompts.0.x"}


@pytest.mark.parametrize("raw", [None, [], "the cat", 42])
def test_parse_prompts_refuses_non_object_as_invalid_request(raw):
    exc = _invalid(raw)

    assert len(exc.errors) == 1


def test_parse_prompts_field_error_without_prompt_is_invalid_request():
    # given a payload with no prompt kind and a bad field, the field error is what gets reported
    exc = _invalid({"output_format": "gif"})

    assert "output_format" in _locs(exc)


# --- check_inside ----------------------------------------------------------------------------


def test_check_inside_accepts_points_and_boxes_within():
    prompts = parse_prompts(
        {
            "point_prompts": [{"x": 0, "y": 0}, {"x": 99, "y": 49}, {"x": 99.5, "y": 49.5}],
            "box_prompts": [{"x_min": 0, "y_min": 0, "x_max": 100, "y_max": 50}],
        }
    )

    prompts.check_inside(100, 50)  # does not raise


def test_check_inside_accepts_text_prompt_only():
    parse_prompts({"prompt": "cat"}).check_inside(1, 1)


@pytest.mark.parametrize(
    "point",
    [pytest.param({"x": 100, "y": 0}, id="x-on-edge"), pytest.param({"x": 0, "y": 50}, id="y-on-edge")],
)
def test_check_inside_refuses_point_on_or_past_edge(point):
    prompts = parse_prompts({"point_prompts": [point]})

    with pytest.raises(InvalidRequest) as caught:
        prompts.check_inside(100, 50)

    assert [err["loc"] for err in caught.value.errors] == ["point_prompts.0"]


@pytest.mark.parametrize(
    "box",
    [
        pytest.param({"x_min": 0, "y_min": 0, "x_max": 100.5, "y_max": 10}, id="x-past"),
        pytest.param({"x_min": 0, "y_min": 0, "x_max": 10, "y_max": 51}, id="y-past"),
    ],
)
def test_check_inside_refuses_box_reaching_outside(box):
    prompts = parse_prompts({"box_prompts": [box]})

    with pytest.raises(InvalidRequest) as caught:
        prompts.check_inside(100, 50)

    assert [err["loc"] for err in caught.value.errors] == ["box_prompts.0"]


def test_check_inside_lists_every_outside_prompt():
    prompts = parse_prompts(
        {
            "point_prompts": [{"x": 1, "y": 1}, {"x": 500, "y": 1}],
            "box_prompts": [{"x_min": 0, "y_min": 0, "x_max": 200, "y_max": 10}, BOX | {"x_max": 20}],
        }
    )

    with pytest.raises(InvalidRequest) as caught:
        prompts.check_inside(100, 50)

    assert [err["loc"] for err in caught.value.errors] == [
        "point_prompts.1",
        "box_prompts.0",
        "box_prompts.1",
    ]
    assert all(set(err) == {"loc", "msg"} for err in caught.value.errors)
