// Firewall tab: counts down the pending-confirmation banner and reloads the page when the change
// reverts (the agent restores the previous rules on its own). Without JavaScript the banner shows
// the remaining seconds as of page load and the Confirm button still works.
// The tab is a live region: app.ts re-renders it when anyone changes this host, which replaces
// the banner (or adds one). So every tick looks the countdown up again, and a new one restarts
// from the seconds it was rendered with.
let shown: HTMLElement | null = null;
let end = 0;
let reloading = false;
const tick = (): void => {
  const countdown = document.getElementById('fw-countdown');
  if (countdown !== shown) {
    shown = countdown;
    // Milliseconds left as the agent counted them when the page was rendered (no clock mixing,
    // no rounding carried over from one re-render to the next).
    const ms = Number(countdown?.dataset.msLeft ?? Number(countdown?.dataset.secondsLeft ?? '0') * 1000);
    end = Date.now() + (Number.isFinite(ms) ? ms : 0);
  }
  if (countdown) {
    const s = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    countdown.textContent = s > 0 ? `${s} s` : 'now — reverting…';
    if (s === 0 && !reloading) {
      reloading = true;
      window.setTimeout(() => location.reload(), 2000);
    }
  }
  window.setTimeout(tick, 250);
};
tick();
