{
  "targets": [
    {
      "target_name": "ip6sock",
      # One source list for node-gyp and CMakeLists.txt (cmake-js): native/sources.txt.
      "sources": [
        "<!@(grep -v '^#' native/sources.txt)"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # SWALLOW_UNTHROWABLE_EXCEPTIONS: an error raised while the environment is being torn
      # down (worker.terminate() inside a method) cannot become a JavaScript exception; without
      # it node-addon-api throws a C++ one out of its callback wrapper and the process aborts.
      # CPP_EXCEPTIONS_ALL: a std::exception (bad_alloc) becomes a JavaScript error too.
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
                  "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
