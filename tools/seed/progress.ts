/**
 * A one-line progress bar on stderr (`[#####.....]  50%  step  12.3 s, about 12 s left`), redrawn in
 * place on a terminal; elsewhere (CI, a log file) one line per step.
 */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr) {
  const started = Date.now();
  const tty = stream.isTTY === true;
  let lastStep = '';
  let lastDraw = 0;
  return {
    update(done: number, total: number, step: string): void {
      const now = Date.now();
      if (tty && step === lastStep && now - lastDraw < 100 && done < total) return;
      const fraction = total > 0 ? Math.min(1, done / total) : 0;
      const width = 30;
      const filled = Math.round(fraction * width);
      const elapsed = (now - started) / 1000;
      // Only once a tenth is done: before that the first steps (planning) say little of the rest.
      const left = fraction >= 0.1 && fraction < 1 ? `, about ${duration((elapsed * (1 - fraction)) / fraction)} left` : '';
      const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}%  ${step}  ${elapsed.toFixed(1)} s${left}`;
      if (tty) stream.write(`\r${line.padEnd(stream.columns ? stream.columns - 1 : 100)}`);
      else if (step !== lastStep) stream.write(`${line}\n`);
      lastStep = step;
      lastDraw = now;
    },
    finish(message: string): void {
      if (tty) stream.write('\n');
      stream.write(`${message}\n`);
    },
  };
}

function duration(seconds: number): string {
  return seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}
