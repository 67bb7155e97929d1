"""Format detection looks at the root element and namespace, never at the file name."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.results.detect import TRX_NAMESPACE, detect_format
from bot.results.errors import ErrorCode, ResultFileError
from bot.results.parse import parse_results

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'<?xml version="1.0"?>\n<testsuites><testsuite name="a"/></testsuites>', "junit"),
        (b"<testsuite name='a' tests='0'/>", "junit"),
        (b"\xef\xbb\xbf<!-- generated -->\n<?pi x?><testsuites>", "junit"),
        (b'<assemblies timestamp="x"><assembly name="a.dll">', "xunit2"),
        (b'<?xml version="1.0" encoding="utf-8" standalone="no"?><test-run id="0">', "nunit3"),
        (f'<TestRun id="1" xmlns="{TRX_NAMESPACE}">'.encode(), "trx"),
        (f'<t:TestRun xmlns:t="{TRX_NAMESPACE}" id="1">'.encode(), "trx"),
        ('<testsuites name="utf16">'.encode("utf-16"), "junit"),
        (b'<test-results name="r.xml" total="1"><environment/>', "nunit2"),
        (b'<test-suite type="Assembly" name="a.dll" executed="True" result="Success">', "nunit2"),
        (b'<test-suite type="Assembly" id="0-1" name="a.dll" runstate="Runnable">', "nunit3"),
        (b'<assembly name="C:\\t\\A.Tests.dll" test-framework="xUnit.net 1.9">', "xunit1"),
        (b'<!DOCTYPE testsuite SYSTEM "junit.dtd">\n<testsuite/>', "junit"),
        (b"\xef\xbb\xbf<!DOCTYPE testsuites [<!ELEMENT testsuites ANY>]><testsuites>", "junit"),
    ],
)
def test_detects_dialect_from_root_element(head: bytes, expected: str) -> None:
    assert detect_format(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b'<TestRun id="1">',  # TRX root without its namespace
        b'<test-result name="nunit2.xml">',  # close to NUnit 2, but not it
        b'{"testResults": []}',
        b"<html><body>502 Bad Gateway</body></html>",
        b"<!-- a comment that never ends",
        "<testsuites>".encode("utf-16-le"),  # UTF-16 without a BOM
    ],
)
def test_unknown_roots_are_rejected(head: bytes) -> None:
    with pytest.raises(ResultFileError) as caught:
        detect_format(head, filename="upload.xml")
    assert caught.value.code == ErrorCode.UNKNOWN_FORMAT
    assert caught.value.reason.startswith("upload.xml: ")


def test_empty_and_blank_files_are_rejected() -> None:
    for head in (b"", b"  \n\t", b"\xef\xbb\xbf"):
        with pytest.raises(ResultFileError) as caught:
            detect_format(head)
        assert caught.value.code == ErrorCode.EMPTY


@pytest.mark.parametrize(
    "head",
    [
        b'<!DOCTYPE testsuites [<!ENTITY e SYSTEM "file:///etc/passwd">]><testsuites/>',
        b'<!DOCTYPE testsuites [<!ENTITY % p SYSTEM "http://x/p.dtd"> %p;]><testsuites/>',
        b'<!DOCTYPE testsuites SYSTEM "a.dtd"><!DOCTYPE testsuites><testsuites/>',
        b"<!doctype testsuites><testsuites/>",  # not XML's spelling: refused, not guessed at
        b'<!DOCTYPE testsuites SYSTEM "never-closed><testsuites/>',
        b"<!DOCTYPE testsuites [<!ELEMENT testsuites ANY> <testsuites/>",
        '<!DOCTYPE testsuites><testsuites name="utf16">'.encode("utf-16"),
    ],
)
def test_doctype_with_entities_or_unreadable_is_rejected_while_sniffing(head: bytes) -> None:
    with pytest.raises(ResultFileError) as caught:
        detect_format(b'<?xml version="1.0"?>\n' + head if head[:2] != b"\xff\xfe" else head)
    assert caught.value.code == ErrorCode.DTD_FORBIDDEN


def test_file_name_does_not_decide_the_format() -> None:
    junit = (FIXTURES / "junit-named-as.trx").read_bytes()
    assert parse_results(io.BytesIO(junit), filename="results.trx").format == "junit"
    trx = (FIXTURES / "results.trx").read_bytes()
    assert parse_results(io.BytesIO(trx), filename="junit.xml").format == "trx"


def test_utf16_file_parses_end_to_end() -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?><testsuite><testcase name="é"/></testsuite>'
    parsed = parse_results(io.BytesIO(text.encode("utf-16")), filename="u.xml")
    assert [r.name for r in parsed.results] == ["é"]
