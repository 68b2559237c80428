import pytest

from tests.media.corpus import encode, street_photo


@pytest.fixture(scope="session")
def scene_jpegs():
    """Twenty-one different street photos (JPEG bytes); [0] is 'the original'."""
    return [encode(street_photo(3000 + i, size=(800, 600)), "JPEG", quality=88) for i in range(21)]


@pytest.fixture(scope="session")
def resaved_half(scene_jpegs):
    """scene 0 re-saved at quality 40 and resized to half: a different file of the same photo."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(scene_jpegs[0]))
    half = image.resize((image.width // 2, image.height // 2), Image.Resampling.BILINEAR)
    return encode(half, "JPEG", quality=40)


@pytest.fixture
def intake_app(sandbox_app, reference_data):
    """An app wired to the WeChat sandbox, with the catalogue and demo grids, context pushed."""
    sandbox_app.config["PUBLIC_BASE_URL"] = "http://127.0.0.1:9"  # media checks need absolute URLs
    return sandbox_app
