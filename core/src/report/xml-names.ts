/**
 * Element and attribute names of report XML that the fact sheet tags [I] (uncertain), kept in one place: each
 * entry lists every spelling the parser accepts, the believed one first. The simulator writes the first.
 * Correct a name here and both the parser and the simulator follow.
 */
export const XML_NAMES = {
  /** Show My Screen recordings block of a session and its items. */
  showMyScreenRecordings: ['show_my_screen_recordings', 'smsr_recordings'],
  showMyScreenRecording: ['show_my_screen_recording', 'smsr_recording'],
  /** Team list of a session and its items (RS). */
  teamList: ['team_list', 'teams', 'support_teams'],
  team: ['team', 'support_team'],
  primaryTeam: ['primary_team'],
  /** Attribute or child that flags the primary team. */
  teamPrimary: ['primary', 'is_primary', 'primary_team'],
  /** Representative display number. */
  displayNumber: ['display_number'],
  /** Customer RPAT flag. */
  rpat: ['rpat_support', 'rpat', 'is_rpat'],
  /** Key attribute of a system-information `field`. */
  fieldKey: ['name', 'id'],
  /** Presentation report. */
  presentationRoot: ['presentation_list'],
  presentation: ['presentation', 'presentation_session'],
  presenter: ['presenter', 'primary_presenter'],
  attendeeList: ['attendee_list', 'attendees'],
  attendee: ['attendee'],
  presentationEvents: ['session_details', 'presentation_details'],
  presentationRecordingUrl: ['recording_download_url', 'presentation_recording_download_url'],
  presentationRecordingViewUrl: ['recording_view_url', 'presentation_recording_view_url'],
} as const;

/**
 * Texts of an `<error>` document that mean "no data" (an empty result, not a failure). Localised by the appliance;
 * matched case-insensitively anywhere in the text.
 */
export const NO_DATA_PATTERNS: readonly RegExp[] = [
  /report information matching your chosen criteria is available/i,
  /no .* found for the given search criteria/i,
  /correspondant à vos critères n.est disponible/i,
  /no (session|presentation)s? (data )?(found|available)/i,
];

/** True when an `<error>` text is a "no data" answer. */
export function isNoDataText(text: string): boolean {
  return NO_DATA_PATTERNS.some((p) => p.test(text));
}
