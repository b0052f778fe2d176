/** The appliance simulator as a library. */
export * from './appliance-simulator.js';
export * from './faults.js';
export * from './report-xml.js';
export * from './session-data.js';
