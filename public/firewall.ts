// Firewall tab: counts down the pending-confirmation banner and reloads the page when the change
// reverts (the agent restores the previous rules on its own). Without JavaScript the banner shows
// the remaining seconds as of page load and the Confirm button still works.
const countdown = document.getElementById('fw-countdown');
if (countdown) {
  const left = Number(countdown.dataset.secondsLeft ?? '0');
  const end = Date.now() + (Number.isFinite(left) ? left : 0) * 1000;
  const tick = (): void => {
    const s = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    countdown.textContent = s > 0 ? `${s} s` : 'now — reverting…';
    if (s > 0) window.setTimeout(tick, 250);
    else window.setTimeout(() => location.reload(), 2000);
  };
  tick();
}
