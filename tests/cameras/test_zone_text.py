"""The zone checker's messages (inference/zone_specs.py) in the reader's language (cameras/zone_text.py).

Every problem the checker can name is produced here by the real checker from a bad zone list: each must
be a known message (a change of wording in zone_specs that zone_text does not follow fails here), and a
Korean reader gets no English words but the names and values they typed.
"""

import re

import pytest
from django.utils import translation

from cameras.zone_text import zone_error_known, zone_error_text
from inference.zone_specs import validate_zones

SQUARE = [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]
BAD = [
    "not a list", [{"name": f"z{i}", "kind": "ignore", "points": SQUARE} for i in range(21)], ["zone"],
    [{"name": "a", "kind": "ignore", "points": SQUARE, "colour": "red"}], [{"kind": "ignore", "points": SQUARE}],
    [{"name": "a" * 51, "kind": "ignore", "points": SQUARE}],
    [{"name": "a", "kind": "ignore", "points": SQUARE}, {"name": "A", "kind": "ignore", "points": SQUARE}],
    [{"name": "a", "kind": "moat", "points": SQUARE}], [{"name": "a", "kind": "ignore", "points": "all"}],
    [{"name": "a", "kind": "line", "points": SQUARE}], [{"name": "a", "kind": "ignore", "points": SQUARE[:2]}],
    [{"name": "a", "kind": "ignore", "points": [[0.1, 0.1], "x", [0.3, 0.3]]}],
    [{"name": "a", "kind": "ignore", "points": [[0.1, 0.1], [1.5, 0.1], [0.3, 0.3]]}],
    [{"name": "a", "kind": "line", "points": [[0.1, 0.1], [0.1, 0.1]]}],
    [{"name": "a", "kind": "ignore", "points": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]}],
    [{"name": "a", "kind": "ignore", "points": SQUARE, "loiter_seconds": 5}],
    [{"name": "a", "kind": "loiter", "points": SQUARE, "loiter_seconds": 0}],
    [{"name": "a", "kind": "ignore", "points": SQUARE, "min_area": 0.5}],
    [{"name": "a", "kind": "forbidden", "points": SQUARE, "min_area": 2}],
    [{"name": "a", "kind": "ignore", "points": SQUARE, "classes": ["person"]}],
    [{"name": "a", "kind": "forbidden", "points": SQUARE, "classes": []}],
    [{"name": "a", "kind": "forbidden", "points": SQUARE, "direction": "left"}],
    [{"name": "a", "kind": "line", "points": SQUARE[:2], "direction": "up"}],
]


def messages() -> list[str]:
    out = []
    for zones in BAD:
        with pytest.raises(ValueError) as caught:
            validate_zones(zones)
        out.append(str(caught.value))
    return out


def test_every_message_of_the_zone_checker_is_known():
    found = messages()
    assert len(set(found)) == len(BAD)  # each bad list above names a problem of its own
    assert [m for m in found if not zone_error_known(m)] == []
    assert zone_error_text("something else") == "something else"


def test_a_korean_reader_gets_the_zone_errors_in_korean():
    with translation.override("ko"):
        out = [zone_error_text(m) for m in messages()]
    leftovers = {}
    for text in out:
        words = re.findall(r"[A-Za-z]{3,}", re.sub(r"'[^']*'|\[[^\]]*\]|\([a-z_]+\)|\b(moat|colour|up|left|right|both|ignore|"
                                                     r"forbidden|loiter|line|name|kind|points|loiter_seconds|min_area|"
                                                     r"classes|direction|str|int|person|car|bicycle|all)\b", "", text))
        if words:
            leftovers[text] = words
    assert leftovers == {}
    with translation.override("ko"):
        assert zone_error_text("zones[0] 'gate': has 2 point(s); a polygon needs 3 to 50") == \
            "구역[0] 'gate': 점이 2개입니다. 다각형에는 3~50개가 필요합니다"
    with translation.override("en"):  # an English reader reads the checker's own words
        assert [zone_error_text(m) for m in messages()] == messages()


@pytest.mark.django_db
def test_the_admin_and_api_show_the_zone_error_in_the_users_language(api_as, owner, camera):
    owner.is_staff = True
    owner.language = "ko"
    owner.save(update_fields=["is_staff", "language"])
    response = api_as(owner).patch(f"/api/v1/cameras/{camera.pk}/", {"zones": [{"name": "gate", "kind": "ignore",
                                                                                "points": SQUARE[:2]}]},
                                   format="json", HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 400
    assert "구역[0] 'gate': 점이 2개입니다" in str(response.json()["zones"])
