/**
 * Bench-only preload (`node --import <this file> …`, set by `BENCH_PROFILE=1`): SIGUSR2 toggles the
 * V8 sampling profiler, so a profile covers exactly a load generator's timed window (the bench
 * signals at WINDOW_START and WINDOW_END) and not start-up, warm-up or the idle catch-up between
 * runs. Each window is written to `$GATEHOUSE_CPU_WINDOW_DIR/<pid>-<n>.cpuprofile` (n from 1).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.GATEHOUSE_CPU_WINDOW_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  let running = false;
  let n = 0;
  if (process.env.GATEHOUSE_PROFILE_KIND === 'heap') {
    session.post('HeapProfiler.enable');
    process.on('SIGUSR2', () => {
      if (!running) {
        running = true;
        session.post('HeapProfiler.startSampling', {
          samplingInterval: 8192,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        });
        return;
      }
      running = false;
      const file = path.join(dir, `${process.pid}-${++n}.heapprofile`);
      session.post('HeapProfiler.stopSampling', (err, res) => {
        if (!err) writeFileSync(file, JSON.stringify(res.profile));
      });
    });
  } else {
    // The same sampling interval as `node --cpu-prof` (1 ms).
    session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: 1000 }));
    process.on('SIGUSR2', () => {
      if (!running) {
        running = true;
        session.post('Profiler.start');
        return;
      }
      running = false;
      const file = path.join(dir, `${process.pid}-${++n}.cpuprofile`);
      session.post('Profiler.stop', (err, res) => {
        if (!err) writeFileSync(file, JSON.stringify(res.profile));
      });
    });
  }
}
