"""The address reader: the ways residents write where they live, and what is no address."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbot.policy.addresses import (
    Address,
    building_key,
    chinese_number,
    match_household,
    read_address,
    strip_addresses,
    unit_key,
)
from gridbot.store.base import Household

#: (words, building, unit, room): at least sixty forms, as reports write them
TABLE: list[tuple[str, str, str, str]] = [
    ("3幢2单元201", "3", "2", "201"),
    ("3幢2单元201室楼道灯坏了", "3", "2", "201"),
    ("3栋", "3", "", ""),
    ("3栋楼道灯坏了", "3", "", ""),
    ("5号楼", "5", "", ""),
    ("5号楼电梯停了", "5", "", ""),
    ("7#楼", "7", "", ""),
    ("7#楼门口有车挡着", "7", "", ""),
    ("7#2单元301", "7", "2", "301"),
    ("幸福里3-201", "3", "", "201"),
    ("幸福里3-201漏水", "3", "", "201"),
    ("幸福里3-2-201", "3", "2", "201"),
    ("桂花园8-1203的空调外机要掉了", "8", "", "1203"),
    ("阳光小区12-502", "12", "", "502"),
    ("我家住3-201", "3", "", "201"),
    ("3-2-201室门口", "3", "2", "201"),
    ("12-1102室", "12", "", "1102"),
    ("三幢", "3", "", ""),
    ("三幢二单元", "3", "2", ""),
    ("三幢二单元201", "3", "2", "201"),
    ("十二栋", "12", "", ""),
    ("二十一号楼", "21", "", ""),
    ("十栋3单元", "10", "3", ""),
    ("两栋", "2", "", ""),
    ("３幢２单元２０１", "3", "2", "201"),
    ("１２栋", "12", "", ""),
    ("５号楼３０２室", "5", "", "302"),
    ("７＃楼", "7", "", ""),
    ("3 幢 2 单元 201", "3", "2", "201"),
    ("3幢 201", "3", "", "201"),
    ("3幢201", "3", "", "201"),
    ("3幢201室", "3", "", "201"),
    ("3幢201号", "3", "", "201"),
    ("3幢-201", "3", "", "201"),
    ("3幢-2-201", "3", "2", "201"),
    ("3栋2单元", "3", "2", ""),
    ("3栋2单元1102", "3", "2", "1102"),
    ("3号幢", "3", "", ""),
    ("3号栋2单元", "3", "2", ""),
    ("15号楼1单元1502室", "15", "1", "1502"),
    ("A座1203", "A", "", "1203"),
    ("B栋", "B", "", ""),
    ("b座", "B", "", ""),
    ("3A栋", "3A", "", ""),
    ("1幢门洞", "1", "", ""),
    ("2幢1门洞101", "2", "1", "101"),
    ("报事 3幢2单元楼道灯坏了，晚上看不见", "3", "2", ""),
    ("楼下9幢的垃圾桶满了", "9", "", ""),
    ("我是6栋502的", "6", "", "502"),
    ("6栋502的住户反映", "6", "", "502"),
    ("麻烦看一下11幢3单元", "11", "3", ""),
    ("105栋", "105", "", ""),
    ("8#", "8", "", ""),
    ("8#302", "8", "", "302"),
    ("电话13800000101，住3幢201", "3", "", "201"),
    ("12月3日下午，5号楼", "5", "", ""),
    ("明天10:30到3栋", "3", "", ""),
    ("花了300元，4幢", "4", "", ""),
    ("3幢有20人没水", "3", "", ""),
    ("3幢300元", "3", "", ""),
    ("4栋2单元楼道堆物", "4", "2", ""),
    ("2单元301", "", "2", "301"),
    ("住在幸福里5-101", "5", "", "101"),
    ("第9栋", "", "", ""),
]


@pytest.mark.parametrize(("text", "building", "unit", "room"), TABLE)
def test_the_ways_people_write_an_address(text: str, building: str, unit: str,
                                          room: str) -> None:
    address = read_address(text)
    if not (building or room):
        assert address is None, text
        return
    assert address is not None, text
    assert (address.building, address.unit, address.room) == (building, unit, room), text


def test_the_table_is_long_enough() -> None:
    assert len(TABLE) >= 60


NOT_ADDRESSES = [
    "13800000101", "138-0000-0101", "138 0000 0101", "+86 138 0000 0101", "0512-66668888",
    "(0512)66668888", "400-800-1234", "2026-12-06", "2026/12/06", "12-06", "11-23",
    "12月3号", "12月3号楼下停车的是谁", "3月5日", "10:30", "10：30", "10点30分", "下午3点",
    "300元", "¥45.5", "3000块", "1.5万", "3-500块", "3-5天", "这一栋楼都停电了",
    "每一栋都通知了", "第十二栋", "C#", "2-3个人", "1-2周", "共3栋", "约300人",
    "4.5", "5楼", "住5楼", "3-201元", "3点-201", "房价3-201万",
]


@pytest.mark.parametrize("text", NOT_ADDRESSES)
def test_phones_dates_times_and_money_are_no_address(text: str) -> None:
    assert read_address(text) is None, text


def _phone() -> st.SearchStrategy[str]:
    digits = st.text("0123456789", min_size=8, max_size=8)
    prefix = st.sampled_from(["13", "15", "18", "17", "19"])
    third = st.sampled_from("0123456789")
    sep = st.sampled_from(["", " ", "-"])
    return st.builds(lambda p, t, d, s, pl: f"{pl}{p}{t}{s}{d[:4]}{s}{d[4:]}",
                     prefix, third, digits, sep, st.sampled_from(["", "+86 ", "86-"]))


def _date() -> st.SearchStrategy[str]:
    y = st.integers(2000, 2099)
    m = st.integers(1, 12)
    d = st.integers(1, 31)
    return st.one_of(
        st.builds(lambda a, b, c, s: f"{a}{s}{b:02d}{s}{c:02d}", y, m, d,
                  st.sampled_from(["-", "/", "."])),
        st.builds(lambda b, c: f"{b}-{c}", m, d),
        st.builds(lambda b, c, w: f"{b}月{c}{w}", m, d, st.sampled_from(["日", "号", "号下午"])),
        st.builds(lambda a, b, c: f"{a}年{b}月{c}日", y, m, d),
    )


def _time() -> st.SearchStrategy[str]:
    h = st.integers(0, 23)
    mi = st.integers(0, 59)
    return st.one_of(
        st.builds(lambda a, b, s: f"{a}{s}{b:02d}", h, mi, st.sampled_from([":", "："])),
        st.builds(lambda a, b: f"{a}点{b}分", h, mi),
        st.builds(lambda a, b, c: f"{a}:{b:02d}-{c}:00", h, mi, h),
    )


def _money() -> st.SearchStrategy[str]:
    amount = st.one_of(st.integers(1, 99999).map(str),
                       st.decimals(0, 9999, places=2).map(str))
    return st.one_of(
        st.builds(lambda a, u: f"{a}{u}", amount, st.sampled_from(["元", "块", "块钱", "万"])),
        st.builds(lambda a: f"¥{a}", amount),
        st.builds(lambda a, b: f"{a}-{b}元", st.integers(1, 999), st.integers(100, 9999)),
    )


@settings(max_examples=300, deadline=None)
@given(thing=st.one_of(_phone(), _date(), _time(), _money()),
       before=st.sampled_from(["", "电话", "时间：", "花了", "在", "大概", "联系 ", "，"]),
       after=st.sampled_from(["", "。", "左右", "，谢谢", " 联系我", "以后"]))
def test_no_phone_date_time_or_amount_is_read_as_an_address(thing: str, before: str,
                                                           after: str) -> None:
    assert read_address(before + thing + after) is None


@settings(max_examples=200, deadline=None)
@given(building=st.integers(1, 199), unit=st.integers(1, 9), floor=st.integers(1, 32),
       door=st.integers(1, 4), mark=st.sampled_from(["幢", "栋", "号楼", "#"]),
       tail=st.sampled_from(["", "室", "楼道灯坏了", "，电话13800000101"]))
def test_a_written_address_reads_back(building: int, unit: int, floor: int, door: int,
                                      mark: str, tail: str) -> None:
    room = f"{floor}{door:02d}"
    address = read_address(f"{building}{mark}{unit}单元{room}{tail}")
    assert address == Address(building=str(building), unit=str(unit), room=room)


def test_ledger_keys_read_like_reports() -> None:
    assert [building_key(b) for b in ("3幢", "3栋", "3号楼", "三幢", "3", "３幢", "A座")] == \
        ["3", "3", "3", "3", "3", "3", "A"]
    assert [unit_key(u) for u in ("2单元", "二单元", "2", "")] == ["2", "2", "2", ""]
    assert chinese_number("一百零五") == 105
    assert chinese_number("二十") == 20


def test_an_address_is_matched_to_its_household() -> None:
    ledger = [Household(microgrid="M01", building="3幢", entrance="2单元", room="201"),
              Household(microgrid="M01", building="3幢", entrance="1单元", room="101"),
              Household(microgrid="M01", building="3幢", entrance="1单元", room="201")]
    assert match_household(Address(building="3", unit="2", room="201"), ledger) == ledger[0]
    assert match_household(Address(building="3", room="101"), ledger) == ledger[1]
    # two households 201 in building 3: the unit is needed
    assert match_household(Address(building="3", room="201"), ledger) is None
    assert match_household(Address(building="4", room="101"), ledger) is None


def test_strip_addresses_leaves_the_words() -> None:
    assert strip_addresses("3幢2单元楼道灯坏了").strip() == "楼道灯坏了"
    assert strip_addresses("5号楼楼道灯坏了").strip() == "楼道灯坏了"
