import re

import backtest_core
from backtest_core.build import engine_build_id


def test_build_id_is_the_version_plus_a_source_digest_and_stable():
    build = engine_build_id()

    assert re.fullmatch(rf"{re.escape(backtest_core.__version__)}\+[0-9a-f]{{12}}", build)
    engine_build_id.cache_clear()
    assert engine_build_id() == build
