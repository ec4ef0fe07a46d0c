import pkg from '../package.json' with { type: 'json' };

/** Version from package.json; commit from the build environment (Fly sets FLY_IMAGE_REF, CI sets GIT_COMMIT). */
export const VERSION = {
  version: pkg.version,
  commit: process.env.GIT_COMMIT ?? process.env.SOURCE_COMMIT ?? 'unknown',
};
