/**
 * Names of Reporting/Backup API reports and parameters, in one place. Those the fact sheet tags [I] (uncertain)
 * are marked; if a real appliance spells one differently, correct it here — the site client and the appliance
 * simulator both read this table.
 */
export const API = {
  tokenPath: '/oauth2/token',
  reportingPath: '/api/reporting',
  backupPath: '/api/backup',
  reports: {
    supportSession: 'SupportSession',
    supportSessionListing: 'SupportSessionListing',
    sessionRecording: 'SupportSessionRecording',
    /** [I] parameters `lsid` + `instance` */
    commandShellRecording: 'CommandShellRecording',
    /** [I] name */
    showMyScreenRecording: 'ShowMyScreenRecording',
    presentationSession: 'PresentationSession',
    /** [I] name */
    presentationSessionListing: 'PresentationSessionListing',
    /** [I] name */
    presentationRecording: 'PresentationSessionRecording',
  },
  params: {
    report: 'generate_report',
    startTime: 'start_time',
    endTime: 'end_time',
    startDate: 'start_date',
    endDate: 'end_date',
    duration: 'duration',
    lsid: 'lsid',
    lsids: 'lsids',
    /** [I] */
    instance: 'instance',
    /** Backup password: [I] sent as a form field; the PRA docs show a JSON body. */
    backupPassword: 'password',
  },
} as const;

/** Sessions asked for by lsid in one report request (`ic failed retry`, the engine's redelivery after a plugin crash). */
export const LSIDS_PER_REQUEST = 100;
