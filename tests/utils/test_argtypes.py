"""argparse types of numeric options: out-of-range values refused by the parser."""

import argparse

import pytest

from alphafree_d2.utils.argtypes import non_negative_int, port_number, positive_float, positive_int


@pytest.mark.parametrize("text, value", [("64", 64.0), ("0.5", 0.5), ("1e-3", 0.001)])
def test_positive_float_accepts(text, value):
    assert positive_float(text) == value


@pytest.mark.parametrize("text", ["0", "-5", "nan", "inf", "-inf", "", "many"])
def test_positive_float_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a positive number"):
        positive_float(text)


def test_whole_numbers():
    assert positive_int("1e8") == 100_000_000 and positive_int("3") == 3
    assert non_negative_int("0") == 0
    assert port_number("0") == 0 and port_number("65535") == 65535
    for function, text in [
        (positive_int, "0"),
        (positive_int, "2.5"),
        (positive_int, "nan"),
        (non_negative_int, "-1"),
        (port_number, "65536"),
        (port_number, "-1"),
        (port_number, "http"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            function(text)


def test_the_parser_names_the_option(capsys):
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-upload-mb", type=positive_float)
    with pytest.raises(SystemExit):
        parser.parse_args(["--max-upload-mb", "-5"])
    assert (
        "argument --max-upload-mb: expected a positive number, got '-5'" in capsys.readouterr().err
    )
