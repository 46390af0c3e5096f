"""The command parser: slash commands, Chinese keywords, ordinary chat, case numbers."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbot import handlers
from gridbot.commands import (
    ParsedCommand,
    UnknownCommand,
    clean_text,
    split_case_number,
)
from gridbot.declare import CommandSpec

BOT = "GridBot"
#: every declared command, and the parser the engine reads chat with
COMMANDS = handlers.REGISTRY.specs
SPECS = {spec.name: spec for spec in COMMANDS}
parse = handlers.COMMANDS.parse
FAST = settings(max_examples=200, deadline=None)

#: (spec name, English word) for every English form in the table
ENGLISH = [(spec.name, word) for spec in COMMANDS for word in spec.english]
#: (spec name, Chinese keyword) for every Chinese keyword in the table
CHINESE = [(spec.name, word) for spec in COMMANDS for word in spec.chinese]
WITH_ARGS = [(name, word) for name, word in CHINESE if SPECS[name].takes_args]
WITHOUT_ARGS = [(name, word) for name, word in CHINESE if not SPECS[name].takes_args]


def parsed(text: str, bot_username: str | None = BOT) -> ParsedCommand:
    result = parse(text, bot_username)
    assert isinstance(result, ParsedCommand), (text, result)
    return result


def implied(name: str, word: str) -> str | None:
    return dict(SPECS[name].implied).get(word)


# -- the table itself ------------------------------------------------------------------------


def test_table_names_are_unique_and_indexed() -> None:
    assert len(SPECS) == len(COMMANDS)
    assert all(SPECS[spec.name] is spec for spec in COMMANDS)


def test_no_word_belongs_to_two_commands() -> None:
    words = [w.lower() for spec in COMMANDS for w in (*spec.english, *spec.chinese)]
    assert len(words) == len(set(words))


def test_every_command_has_an_english_and_a_chinese_form() -> None:
    for spec in COMMANDS:
        assert spec.english, spec.name
        assert spec.chinese, spec.name


def test_implied_arguments_belong_to_the_commands_own_keywords() -> None:
    for spec in COMMANDS:
        for keyword, _ in spec.implied:
            assert keyword in spec.chinese


# -- slash commands ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "word"), ENGLISH)
def test_english_slash_form(name: str, word: str) -> None:
    result = parsed(f"/{word} 12")
    assert result == ParsedCommand(name=name, args="12", word=f"/{word}")


@pytest.mark.parametrize(("name", "word"), ENGLISH)
def test_english_slash_form_alone(name: str, word: str) -> None:
    assert parsed(f"/{word}") == ParsedCommand(name=name, args="", word=f"/{word}")


@pytest.mark.parametrize(("name", "word"), ENGLISH)
def test_english_slash_form_addressed_to_this_bot(name: str, word: str) -> None:
    assert parsed(f"/{word}@GridBot 12").name == name
    assert parsed(f"/{word}@gridbot 12").name == name  # usernames are case-insensitive
    assert parsed(f"/{word}@GridBot 12").args == "12"


@pytest.mark.parametrize(("name", "word"), ENGLISH)
def test_english_slash_form_addressed_to_another_bot_is_not_ours(name: str, word: str) -> None:
    assert parse(f"/{word}@OtherBot 12", BOT) is None


@pytest.mark.parametrize(("name", "word"), ENGLISH)
def test_english_slash_form_in_capitals(name: str, word: str) -> None:
    result = parsed(f"/{word.upper()} 12")
    assert result.name == name
    assert result.word == f"/{word}"  # echoed in lower case


@pytest.mark.parametrize(("name", "word"), ENGLISH)
def test_english_slash_form_with_full_width_slash(name: str, word: str) -> None:
    assert parsed(f"／{word} 12") == ParsedCommand(name=name, args="12", word=f"/{word}")


def test_claim_examples_from_the_brief() -> None:
    expected = ParsedCommand(name="claim", args="12", word="/claim")
    assert parse("/claim 12") == expected
    assert parse("/claim@GridBot 12", bot_username="GridBot") == expected
    assert parse("/claim@OtherBot 12", bot_username="GridBot") is None
    assert parse("/CLAIM 12") == expected
    assert parse("／claim 12") == expected


def test_addressee_is_ignored_when_the_bot_has_no_username() -> None:
    assert parsed("/claim@AnyBot 12", bot_username=None).name == "claim"


def test_full_width_command_word_and_ideographic_space() -> None:
    # A Chinese input method in full-width mode types all of these.
    assert parsed("／ＣＬＡＩＭ\u3000１２") == ParsedCommand(name="claim", args="１２",
                                                           word="/claim")


@pytest.mark.parametrize("gap", ["\t", "\u3000", "\u00a0", "\n", "  "])
def test_command_word_ends_at_any_whitespace(gap: str) -> None:
    result = parsed(f"/claim{gap}12")
    assert (result.name, result.args) == ("claim", "12")
    result = parsed(f"/claim@GridBot{gap}12")
    assert (result.name, result.args) == ("claim", "12")


def test_slash_command_args_keep_their_lines() -> None:
    result = parsed("/report\n3幢楼道灯坏了\n晚上很黑，老人容易摔倒！")
    assert result.name == "report"
    assert result.args == "3幢楼道灯坏了\n晚上很黑，老人容易摔倒！"
    result = parsed("/report 3幢 楼道灯\n坏了")
    assert result.args == "3幢 楼道灯\n坏了"


def test_slash_args_are_stripped_but_otherwise_kept() -> None:
    result = parsed("/note   12  已联系物业，明天上午来修。  ")
    assert result.args == "12  已联系物业，明天上午来修。"


def test_start_is_help() -> None:
    assert parsed("/start") == ParsedCommand(name="help", args="", word="/start")


def test_chinese_word_after_a_slash_works_and_keeps_implied_args() -> None:
    assert parsed("/值班") == ParsedCommand(name="duty", args="on", word="/值班")
    assert parsed("/下班 1d") == ParsedCommand(name="duty", args="off 1d", word="/下班")
    assert parsed("/认领 12") == ParsedCommand(name="claim", args="12", word="/认领")


@pytest.mark.parametrize("text", ["/foo", "/foo 1", "/claim12", "/FOO@GridBot x", "/报告 x"])
def test_unknown_slash_commands(text: str) -> None:
    result = parse(text, BOT)
    assert isinstance(result, UnknownCommand)
    assert result.word.startswith("/")
    assert " " not in result.word
    assert "@" not in result.word


def test_unknown_command_knows_whether_it_was_addressed_to_us() -> None:
    assert parse("/weather", BOT) == UnknownCommand(word="/weather", addressed=False)
    assert parse("/weather@GridBot", BOT) == UnknownCommand(word="/weather", addressed=True)
    assert parse("/weather@OtherBot", BOT) is None


def test_unknown_command_word_is_cut_short() -> None:
    result = parse("/" + "x" * 500)
    assert isinstance(result, UnknownCommand)
    assert result.word == "/" + "x" * 32


def test_unknown_command_for_another_bot_is_not_ours() -> None:
    assert parse("/weather@OtherBot 苏州", BOT) is None


@pytest.mark.parametrize("text", ["/", "／", "/ claim 12", "/\t", "/@GridBot"])
def test_a_lone_slash_is_not_a_command(text: str) -> None:
    assert parse(text, BOT) is None


# -- Chinese keywords ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "word"), WITH_ARGS)
@pytest.mark.parametrize("sep", [" ", "：", ":", "，", "\u3000", "\t", " #", "#", "＃", ""])
def test_chinese_keyword_with_a_case_number(name: str, word: str, sep: str) -> None:
    result = parsed(f"{word}{sep}12")
    assert result.name == name
    assert result.word == word
    extra = implied(name, word)
    if extra is None:
        assert split_case_number(result.args) == (12, "")
    else:
        assert result.args.split(" ", 1)[0] == extra


@pytest.mark.parametrize(("name", "word"), WITH_ARGS)
def test_chinese_keyword_with_full_width_number(name: str, word: str) -> None:
    result = parsed(f"{word}＃１２")
    assert result.name == name
    if implied(name, word) is None:
        assert split_case_number(result.args) == (12, "")


@pytest.mark.parametrize(("name", "word"), WITH_ARGS)
def test_chinese_keyword_alone(name: str, word: str) -> None:
    result = parsed(word)
    assert result.name == name
    assert result.args == (implied(name, word) or "")


@pytest.mark.parametrize(("name", "word"), WITH_ARGS)
def test_chinese_keyword_alone_with_a_question_mark(name: str, word: str) -> None:
    # "进度？" asks for the list, the same as "进度"; the "？" is not an argument.
    for tail in ("？", "?", "。", "！", " ？"):
        result = parsed(word + tail)
        assert result.name == name
        assert result.args == (implied(name, word) or "")


def test_claim_examples_in_chinese() -> None:
    for text, args in [("认领12", "12"), ("认领 #12", "#12"), ("认领：12", "12"),
                       ("认领＃１２", "＃１２"), ("签收 12", "12")]:
        result = parsed(text)
        assert (result.name, result.args, result.word) == ("claim", args, text[:2])
        assert split_case_number(result.args)[0] == 12


def test_report_runs_straight_into_its_text() -> None:
    assert parsed("报事楼道灯坏了") == ParsedCommand(name="report", args="楼道灯坏了", word="报事")
    assert parsed("报修 电梯困人了！") == ParsedCommand(name="report", args="电梯困人了！",
                                                    word="报修")
    assert parsed("报事：3幢门口，电瓶车在楼道充电。").args == "3幢门口，电瓶车在楼道充电。"


def test_only_report_is_glued() -> None:
    assert [(spec.name, spec.glued) for spec in COMMANDS if spec.glued] == [("report", ("报事",))]
    assert parse("认领了") is None
    assert parse("办结了吗") is None


def test_duty_keywords_imply_on_and_off() -> None:
    assert parsed("值班") == ParsedCommand(name="duty", args="on", word="值班")
    assert parsed("下班") == ParsedCommand(name="duty", args="off", word="下班")
    assert parsed("下班 2d") == ParsedCommand(name="duty", args="off 2d", word="下班")
    assert parsed("下班：3天").args == "off 3天"
    assert parsed("/duty off") == ParsedCommand(name="duty", args="off", word="/duty")
    assert parsed("/duty on") == ParsedCommand(name="duty", args="on", word="/duty")
    assert parsed("/duty off 2d").args == "off 2d"


@pytest.mark.parametrize(("name", "word"), WITHOUT_ARGS)
@pytest.mark.parametrize("tail", ["", "？", "?", "!", "！", "。", "~", "  ", "？？"])
def test_no_arg_keywords_alone_or_with_punctuation(name: str, word: str, tail: str) -> None:
    assert parsed(word + tail) == ParsedCommand(name=name, args="", word=word)


@pytest.mark.parametrize(("name", "word"), WITHOUT_ARGS)
def test_no_arg_keywords_followed_by_words_are_chat(name: str, word: str) -> None:
    assert parse(f"{word}一下") is None
    assert parse(f"{word} 看看") is None


def test_no_arg_examples() -> None:
    assert parsed("我的").name == "mine"
    assert parsed("我的？").name == "mine"
    assert parsed("帮助").name == "help"
    assert parsed("超时").name == "overdue"


def test_longest_keyword_wins() -> None:
    # "已解决" and "未解决" are separate commands; neither is cut short.
    assert parsed("已解决 12").name == "confirm"
    assert parsed("未解决 12 灯还是不亮").name == "reopen"
    assert parsed("未解决 12 灯还是不亮").args == "12 灯还是不亮"


@pytest.mark.parametrize(
    "text",
    [
        "我的车被挡住了",
        "帮助一下隔壁老人",
        "上报了吗",
        "进度怎么样了",
        "大家好",
        "",
        " ",
        " \t\n ",
        "\u3000",
        "认领了吗",
        "值班表发一下",
        "下班了",
        "评价一下这个",
        "撤销了没有",
        "转交给谁",
        "超时了吧",
        "我的天",
        "请问 /claim 12 怎么用",
        "今天 认领 12",
        "12",
        "#12",
        "👍",
        "http://example.com/claim",
    ],
)
def test_ordinary_chat_is_not_a_command(text: str) -> None:
    assert parse(text, BOT) is None


def test_keywords_count_only_at_the_start() -> None:
    assert parse("大家帮我 认领 12") is None
    assert parse("有人报事楼道灯坏了") is None


def test_leading_whitespace_and_invisible_characters_are_ignored() -> None:
    assert parsed("  认领 12").name == "claim"
    assert parsed("\u202e认领 12").name == "claim"
    assert parsed("\ufeff/claim 12").args == "12"
    assert parsed("\u200b报事 灯坏了").args == "灯坏了"


def test_chinese_args_keep_what_was_typed() -> None:
    result = parsed("进展 12 已联系物业，明天上午来修。")
    assert split_case_number(result.args) == (12, "已联系物业，明天上午来修。")
    result = parsed("转交 #12 李师傅 他更熟悉")
    assert split_case_number(result.args) == (12, "李师傅 他更熟悉")


# -- clean_text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "invisible",
    ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9b", "\u200b", "\u200e", "\u200f", "\u202a",
     "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\ufeff",
     "\u061c", "\x0b", "\x0c"],
)
def test_clean_text_strips_controls_and_bidi(invisible: str) -> None:
    assert clean_text(f"楼道{invisible}灯坏了") == "楼道灯坏了"


def test_clean_text_keeps_emoji_cjk_and_line_breaks() -> None:
    text = "3幢楼道灯坏了 💡😭\n晚上很黑！「请尽快」👍🏽 🇨🇳 ❤️"
    assert clean_text(text) == text


def test_clean_text_keeps_emoji_joined_by_zwj() -> None:
    family = "👨\u200d👩\u200d👧"
    rainbow = "🏳️\u200d🌈"
    assert clean_text(f"{family} {rainbow}") == f"{family} {rainbow}"


def test_clean_text_keeps_tabs_and_normalises_line_ends() -> None:
    assert clean_text("a\tb\r\nc\rd") == "a\tb\nc\nd"


def test_clean_text_strips_surrounding_whitespace() -> None:
    assert clean_text("  \n 报事 灯坏了 \n ") == "报事 灯坏了"
    assert clean_text("") == ""
    assert clean_text("\u202e\u202c") == ""


# -- split_case_number ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("12 text", (12, "text")),
        ("12", (12, "")),
        ("#12", (12, "")),
        ("# 12 x", (12, "x")),
        ("＃１２", (12, "")),
        ("１２ 文字", (12, "文字")),
        ("№5 x", (5, "x")),
        ("  12  灯 坏了  ", (12, "灯 坏了")),
        ("12，好的。", (12, "好的。")),
        ("12：灯已换好", (12, "灯已换好")),
        ("12、 ok", (12, "ok")),
        ("12。", (12, "")),
        ("12！", (12, "")),
        ("12？", (12, "")),
        ("12\n第二行", (12, "第二行")),
        ("12\u3000灯", (12, "灯")),
        ("0", (0, "")),
        ("007 x", (7, "x")),
        ("No", (None, "No")),
        ("", (None, "")),
        ("   ", (None, "")),
        ("12abc", (None, "12abc")),
        ("12号楼", (None, "12号楼")),
        ("12.5", (None, "12.5")),
        ("-3", (None, "-3")),
        ("abc 12", (None, "abc 12")),
        ("## 12", (None, "## 12")),
    ],
)
def test_split_case_number(args: str, expected: tuple[int | None, str]) -> None:
    assert split_case_number(args) == expected


def test_split_case_number_huge_numbers() -> None:
    assert split_case_number("999999999999 x") == (999_999_999_999, "x")
    # Longer than any case number: not a number at all (and no overflow in the store).
    big = "9" * 13
    assert split_case_number(f"{big} x") == (None, f"{big} x")
    assert split_case_number("9" * 400) == (None, "9" * 400)


def test_split_case_number_keeps_the_rest_exactly() -> None:
    rest = "灯还是不亮，晚上很黑！！（3幢2单元）「急」 ok?  end"
    assert split_case_number(f"12 {rest}") == (12, rest)
    assert split_case_number(f"#12，{rest}") == (12, rest)
    assert split_case_number(f"12 {rest}\n第二行，也保留。") == (12, f"{rest}\n第二行，也保留。")


# -- properties ----------------------------------------------------------------------------------

#: Text that often looks like a command: keywords, slashes, digits, CJK, emoji, controls.
ANY_TEXT = st.lists(
    st.one_of(
        st.characters(),
        st.sampled_from(list("/／@#＃ ：:，。？！\n\t\u3000\u202e\u200d0123456789０１２")),
        st.sampled_from([w for _, w in CHINESE] + [w for _, w in ENGLISH] + ["@GridBot"]),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),
        st.characters(min_codepoint=0, max_codepoint=0x1F),
    ),
    max_size=30,
).map("".join)


@FAST
@given(text=ANY_TEXT, bot=st.sampled_from([None, "GridBot"]))
def test_parse_never_raises(text: str, bot: str | None) -> None:
    result = parse(text, bot)
    assert result is None or isinstance(result, ParsedCommand | UnknownCommand)
    if isinstance(result, ParsedCommand):
        assert result.name in SPECS
        assert result.args == result.args.strip()
        if not SPECS[result.name].takes_args and not result.word.startswith("/"):
            assert result.args == ""
    if isinstance(result, UnknownCommand):
        assert result.word.startswith("/")
        assert len(result.word) <= 33


@FAST
@given(text=st.text())
def test_parse_never_raises_on_any_text(text: str) -> None:
    result = parse(text)
    if isinstance(result, ParsedCommand):
        assert result.name in SPECS


@FAST
@given(text=st.text())
def test_parse_sees_the_same_as_after_clean_text(text: str) -> None:
    assert parse(text, BOT) == parse(clean_text(text), BOT)


@FAST
@given(text=st.text())
def test_clean_text_is_idempotent_and_drops_bidi_overrides(text: str) -> None:
    cleaned = clean_text(text)
    assert clean_text(cleaned) == cleaned
    assert not set(cleaned) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\r")


def _decimal_digits(text: str) -> str:
    """NFKC, then every decimal digit of any script as its ASCII digit."""
    return "".join(str(unicodedata.decimal(ch, ch)) for ch in unicodedata.normalize("NFKC", text))


@FAST
@given(args=ANY_TEXT)
def test_split_case_number_never_raises(args: str) -> None:
    number, rest = split_case_number(args)
    assert rest == rest.strip()
    if number is not None:
        assert number >= 0
        assert str(number) in _decimal_digits(args)
        assert rest in args


@FAST
@given(number=st.integers(min_value=0, max_value=10**12 - 1),
       hash_=st.sampled_from(["", "#", "＃", "# "]),
       full_width=st.booleans())
def test_split_case_number_digits_come_from_the_input(number: int, hash_: str,
                                                      full_width: bool) -> None:
    digits = str(number)
    if full_width:
        digits = digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    found, rest = split_case_number(f"{hash_}{digits} 灯坏了")
    assert found == number
    assert str(found) in unicodedata.normalize("NFKC", digits)
    assert rest == "灯坏了"


SAFE_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.characters(whitelist_categories=("Lu", "Ll")),
        st.sampled_from("，。！？、 0123456789"),
    ),
    max_size=40,
).map(str.strip)


@FAST
@given(spec=st.sampled_from(COMMANDS), n=st.integers(min_value=1, max_value=10**12 - 1),
       text=SAFE_TEXT, data=st.data())
def test_round_trip(spec: CommandSpec, n: int, text: str, data: st.DataObject) -> None:
    english = data.draw(st.sampled_from(spec.english))
    result = parse(f"/{english} {n} {text}", BOT)
    assert isinstance(result, ParsedCommand)
    assert result.name == spec.name
    number, rest = split_case_number(result.args)
    assert number == n
    assert rest == text.lstrip(" ,，:：。.、;；!！?？").strip()


@FAST
@given(name_word=st.sampled_from([(n, w) for n, w in WITH_ARGS if implied(n, w) is None]),
       n=st.integers(min_value=1, max_value=10**12 - 1), text=SAFE_TEXT,
       sep=st.sampled_from([" ", "：", " #", "＃", ""]))
def test_round_trip_chinese(name_word: tuple[str, str], n: int, text: str, sep: str) -> None:
    name, word = name_word
    result = parsed(f"{word}{sep}{n} {text}")
    assert result.name == name
    assert split_case_number(result.args)[0] == n
