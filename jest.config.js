/** Jest runs the TypeScript sources directly through ts-jest; namespace tests build their own topologies. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  // Examples import the package by name, as users do; in tests that name is the sources.
  moduleNameMapper: { '^ip6sock$': '<rootDir>/lib/index.ts', '^@ip6sock/testbed$': '<rootDir>/packages/testbed/src/index.ts' },
  setupFiles: ['<rootDir>/test/setup.ts'],
  testTimeout: 30000,
};
