"""One macro for every Catch2 test of the library, so that flags, the shared
main and the size stay the same everywhere."""

def pystack_test(name, srcs = None, deps = [], data = [], size = "small", tags = [], **kwargs):
    """A Catch2 test named after its source file `<name>.cc`."""
    native.cc_test(
        name = name,
        srcs = srcs or [name + ".cc"],
        deps = ["//:pystack", "//third_party:catch2_main"] + deps,
        data = data,
        size = size,
        tags = tags,
        **kwargs
    )
