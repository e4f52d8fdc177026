"""Offline stand-in for rules_java: @bazel_tools//tools/jdk loads it even in a
pure C++ build, so each name forwards to the native rule."""

java_binary = native.java_binary
java_import = native.java_import
java_library = native.java_library
java_runtime = native.java_runtime
java_toolchain = native.java_toolchain
java_test = native.java_test
