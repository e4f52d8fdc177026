"""One macro for every fuzz target: a libFuzzer binary and the test that runs
it briefly over seeds cut from captures. Both are tagged manual, so `bazel
test //...` (g++) skips them; tools/fuzz.sh builds them with
--config=fuzz (clang, AddressSanitizer, UndefinedBehaviorSanitizer)."""

FUZZ_TAGS = ["manual", "fuzz"]

# -fsanitize=fuzzer both instruments the code for coverage and links
# libFuzzer's main; the library is header-only, so everything worth
# instrumenting is compiled in the target's own source. ASan and UBSan come
# from --config=fuzz, for every C++ file of the build.
_LIBFUZZER = select(
    {"//tests/fuzz:fuzzing": ["-fsanitize=fuzzer"]},
    no_match_error = "fuzz targets build only with clang: run tools/fuzz.sh (bazel --config=fuzz)",
)

def pystack_fuzz_test(name, layer, seconds = 8, dictionary = None):
    """`<name>.cc` as the libFuzzer binary `<name>er`, and the test `<name>`.

    `layer` says which seeds pcap_to_corpus cuts for it; `seconds` is how
    long each run fuzzes; `dictionary`, a libFuzzer dictionary of byte strings
    the format is made of. Inputs under regressions/<name>/ join the seeds
    on every run.
    """
    native.cc_binary(
        name = name + "er",
        testonly = True,
        srcs = [name + ".cc"],
        copts = _LIBFUZZER,
        linkopts = _LIBFUZZER,
        deps = [":support", "//:pystack"],
        tags = FUZZ_TAGS,
    )
    regressions = native.glob(["regressions/%s/*" % name])
    native.sh_test(
        name = name,
        size = "small",
        srcs = ["run_fuzzer.sh"],
        args = [
            "$(rootpath :%ser)" % name,
            "$(rootpath :pcap_to_corpus)",
            layer,
            str(seconds),
        ] + (["--dict=$(rootpath %s)" % dictionary] if dictionary else []) +
               ["$(rootpath %s)" % f for f in regressions],
        data = [
            ":%ser" % name,
            ":pcap_to_corpus",
        ] + ([dictionary] if dictionary else []) + regressions,
        tags = FUZZ_TAGS,
    )
