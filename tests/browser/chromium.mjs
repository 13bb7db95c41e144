// Debian's Chromium, and the flags that let it run headless on these machines: no sandbox
// (tests run as root), no GPU, and nothing that reaches for the network (the machine's closed
// network otherwise refuses many connections at every start). Shared by every browser test.
export const CHROMIUM = process.env.PATCHWIRE_CHROMIUM ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
