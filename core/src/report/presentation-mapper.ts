import type { Presentation } from '@integration-client/schemas';
import { child, children, childText, keepExtra, type XmlNode } from './element-tree.js';
import { mapSession, ownedLsid } from './session-mapper.js';
import { toDurationSeconds, toInt, toIp, toIsoTime, known } from './values.js';
import { XML_NAMES as N } from './xml-names.js';

/**
 * Maps one presentation element. Events use the session event shape (parsed by the session mapper); unknown
 * children are kept in `extra`.
 */
export function mapPresentation(node: XmlNode, supportSiteHost: string, namespace: string): Presentation {
  const lsid = ownedLsid(node, 'presentation');
  const extra: Record<string, unknown> = {};
  const p: Presentation = { lsid, startTime: '', supportSiteHost, namespace, attendees: [], events: [], extra };
  const known_ = new Set([
    'lseq',
    'start_time',
    'end_time',
    'duration',
    'public_site',
    ...N.presenter,
    ...N.attendeeList,
    ...N.presentationEvents,
    ...N.presentationRecordingUrl,
    ...N.presentationRecordingViewUrl,
  ]);
  for (const c of node.children) {
    if (!known_.has(c.name)) keepExtra(extra, c);
  }
  p.lseq = toInt(childText(node, 'lseq'));
  const start = child(node, 'start_time');
  p.startTime = toIsoTime(start?.attrs.timestamp, start?.text) ?? '';
  const end = child(node, 'end_time');
  const endTime = toIsoTime(end?.attrs.timestamp, end?.text);
  if (endTime) p.endTime = endTime;
  p.duration = toDurationSeconds(childText(node, 'duration'));
  const site = child(node, 'public_site');
  if (site)
    p.publicSite = {
      ...(toInt(site.attrs.id) !== undefined ? { id: toInt(site.attrs.id) } : {}),
      ...(site.text.trim() ? { name: site.text.trim() } : {}),
    };
  const presenter = child(node, ...N.presenter);
  if (presenter) {
    p.presenter = { gsnumber: toInt(presenter.attrs.gsnumber) ?? 0 };
    if (toInt(presenter.attrs.id) !== undefined) p.presenter.id = toInt(presenter.attrs.id);
    const name =
      childText(presenter, 'display_name', 'name') ?? (presenter.children.length ? undefined : known(presenter.text));
    if (name) p.presenter.name = name;
  }
  const list = child(node, ...N.attendeeList);
  for (const a of list ? children(list, ...N.attendee) : []) {
    p.attendees.push({
      gsnumber: toInt(a.attrs.gsnumber) ?? 0,
      ...(childText(a, 'name', 'display_name') ? { name: childText(a, 'name', 'display_name') } : {}),
      ...(toIp(childText(a, 'public_ip')) ? { publicIp: toIp(childText(a, 'public_ip')) } : {}),
      ...(toIp(childText(a, 'private_ip')) ? { privateIp: toIp(childText(a, 'private_ip')) } : {}),
      ...(known(childText(a, 'hostname')) ? { hostname: known(childText(a, 'hostname')) } : {}),
      ...(known(childText(a, 'os')) ? { os: known(childText(a, 'os')) } : {}),
      ...(toInt(childText(a, 'seconds_involved')) !== undefined
        ? { secondsInvolved: toInt(childText(a, 'seconds_involved')) }
        : {}),
    });
  }
  const details = child(node, ...N.presentationEvents);
  if (details) {
    const carrier: XmlNode = {
      name: 'session',
      attrs: { lsid },
      text: '',
      children: [
        { name: 'start_time', attrs: { timestamp: '1' }, children: [], text: '' },
        { ...details, name: 'session_details' },
      ],
    };
    p.events = mapSession(carrier, supportSiteHost, namespace).events;
  }
  const url = childText(node, ...N.presentationRecordingUrl);
  const view = childText(node, ...N.presentationRecordingViewUrl);
  if (url || view) p.recording = { ...(url ? { downloadUrl: url } : {}), ...(view ? { viewUrl: view } : {}) };
  if (!p.startTime) throw new Error(`presentation ${lsid} has no usable start_time`);
  if (p.lseq === undefined) delete p.lseq;
  if (p.duration === undefined) delete p.duration;
  return p;
}
