# Builds build/Release/tap.node (native/tap.cc). npm runs `node-gyp rebuild` for a root
# binding.gyp on `npm ci` / `npm install`; `npm run build:native` rebuilds it by hand.
{
  "targets": [
    {
      "target_name": "tap",
      "sources": ["native/tap.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
