"""``data.resize: pil``: the released code's test transform, exactly."""

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from vireid.data.cache import decode_image
from vireid.data.config import DataConfig
from vireid.data.loaders import build_eval_loader
from vireid.data.records import ImageRecord
from vireid.data.transforms import build_test_transform

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _jpeg(path, seed=0, size=(203, 431)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)
    return path


def test_pil_resize_is_the_released_transform_bit_for_bit(tmp_path):
    """extract_feature.py: Image.open -> T.Resize((256, 128)) -> ToTensor -> Normalize(ImageNet)."""
    path = _jpeg(tmp_path / "a.jpg")
    released = transforms.Compose([transforms.Resize((256, 128)), transforms.ToTensor(),
                                   transforms.Normalize(mean=MEAN, std=STD)])(Image.open(path))
    ours = build_test_transform(DataConfig(resize="pil"))(decode_image(path))
    assert ours.dtype == torch.float32 and ours.shape == (3, 256, 128)
    assert torch.equal(ours, released)
    tensor_path = build_test_transform(DataConfig())(decode_image(path))
    assert (tensor_path - released).abs().max() > 1e-3  # the antialiased tensor resize is another filter


def test_eval_loader_with_pil_resize_never_reads_tensor_resized_cache(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    _jpeg(root / "a.jpg", seed=1)
    records = [ImageRecord("a.jpg", 1, 1, 0, -1)]
    cfg = DataConfig(resize="pil", num_workers=0, cache_dir=str(tmp_path / "cache"))
    batch = next(iter(build_eval_loader(records, root, cfg, 1, cache=True)))
    expected = build_test_transform(cfg)(decode_image(root / "a.jpg"))
    assert torch.equal(batch["images"][0], expected)
