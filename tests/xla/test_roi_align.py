"""The shared roi_align test base on the XLA implementation."""

from tests.roi_align_base import RoIAlignTestBase


class TestRoIAlignXla(RoIAlignTestBase):
    impl = "xla"
