import pytest

from prcy.io import check_output


def test_check_output_refuses_suffix_existing_file_and_missing_folder(tmp_path):
    out = tmp_path / "fig.png"
    assert check_output(str(out), suffixes=(".png", ".pdf")) == out
    with pytest.raises(ValueError, match="must end in .png or .pdf"):
        check_output(tmp_path / "fig.jpg", suffixes=(".png", ".pdf"))
    out.write_text("")
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        check_output(out)
    assert check_output(out, overwrite=True) == out
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_output(tmp_path / "missing" / "run.nc")
