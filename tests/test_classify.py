"""Guessing category and priority from what residents write (the sample policy)."""

from __future__ import annotations

import pytest

from gridbot.config import Config
from gridbot.domain import Priority
from gridbot.policy.classification import classify


@pytest.mark.parametrize(("text", "category", "priority"), [
    ("3幢楼道灯坏了，晚上看不见", "facility", Priority.NORMAL),
    ("消防通道被车挡住了", "safety", Priority.NORMAL),
    ("楼道里有电瓶车在充电，很危险", "safety", Priority.NORMAL),
    ("5楼阳台冒烟了！", "safety", Priority.URGENT),
    ("厨房好像着火了", "safety", Priority.URGENT),
    ("楼道里有很重的煤气味", "safety", Priority.URGENT),
    ("燃气费在哪里交", "safety", Priority.NORMAL),  # the bill, not a leak
    ("隔壁王大爷走丢了，穿灰色外套", "other", Priority.URGENT),
    ("有老人在小区门口摔倒了，流血", "other", Priority.URGENT),
    ("8幢电梯里有人被困", "facility", Priority.URGENT),
    ("地下车库水淹了", "other", Priority.URGENT),
    ("垃圾桶满了三天没人清", "sanitation", Priority.NORMAL),
    ("楼上装修噪音太大", "neighbours", Priority.NORMAL),
    ("能不能帮忙给独居的李奶奶买药", "errand", Priority.NORMAL),
    ("请问居住证怎么办理", "question", Priority.LOW),
    ("小区门口有车乱停占道", "parking", Priority.NORMAL),
    ("the lift in building 8 is broken", "facility", Priority.NORMAL),
    ("someone is trapped in the lift", "facility", Priority.URGENT),
    ("I smell gas on the 3rd floor", "safety", Priority.URGENT),
    ("随便说点什么", "other", Priority.NORMAL),
    ("😀😀😀", "other", Priority.NORMAL),
])
def test_classify(config: Config, text: str, category: str, priority: Priority) -> None:
    assert classify(config.policy, text) == (category, priority)
